"""Incident grouping: which open incident does a triaged post join? Rules (rules.py) and the
per-worker candidate index over open incidents (finder.py)."""
