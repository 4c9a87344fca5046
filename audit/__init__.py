"""Audit: an append-only record of sensitive acts, read by coordinators, edited by nobody."""
