"""Votes: questions put to a table, ballots that cannot be traced to a voter."""
