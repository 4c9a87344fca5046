"""Proposals: residents' ideas for their neighbourhood."""
