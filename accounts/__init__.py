"""Accounts: people, their passwords and their sessions."""
