"""A post's path through Flare, one use case per module, each read top to bottom:

  intake.py        store posts from any source, queue them for triage by page
  triage_batch.py  triage a page of posts at once and act on it, most urgent first
  publish.py       the Redis half of an action: dispatch stream, escalation chain, replies, live feed
  sending.py       send replies: each message claimed once, its outcome recorded
  drill.py         which posts are drill traffic

The composition root (dashboard/: CLI, worker, web app) calls these; they call the domain
packages (triage, escalation, models) and never the web app.
"""
