"""Voix des Quartiers: the core (settings, database, i18n, web, security, CLI)."""

import os

# Piccolo finds its engine and apps through this module; set it before any query.
os.environ.setdefault("PICCOLO_CONF", "voix.piccolo_conf")
