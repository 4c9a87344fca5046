"""Exports: position documents (briefs) for institutions, as PDF."""
