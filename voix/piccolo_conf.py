"""Piccolo's configuration (PICCOLO_CONF), for its commands: the process's engine
(voix.db.engine, from DATABASE_URL), and the domain apps."""

from piccolo.conf.apps import AppRegistry

from voix.db import engine

DB = engine()

APP_REGISTRY = AppRegistry(
    apps=[
        "accounts.piccolo_app",
        "maps.piccolo_app",
        "tables.piccolo_app",
        "proposals.piccolo_app",
        "votes.piccolo_app",
        "meetings.piccolo_app",
        "exports.piccolo_app",
        "audit.piccolo_app",
        "help.piccolo_app",
        "translations.piccolo_app",
        "followup.piccolo_app",
        "jobs.piccolo_app",
        "notifications.piccolo_app",
    ]
)
