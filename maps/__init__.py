"""Maps: the priority districts (QPV) and their boundaries."""
