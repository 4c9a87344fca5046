"""Help pages in plain language, and the legal pages each organisation may reword (issue 12)."""
