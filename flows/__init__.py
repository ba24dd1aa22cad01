"""A post's path through Flare, one use case per module, each read top to bottom:

  context.py       the typed context every flow takes (settings, database, Redis, queues, pipeline)
  intake.py        a page of stored posts queued for triage (connectors/intake.py stores them)
  triage_queue.py  triage jobs: a page of post ids per job, by lane
  triage_batch.py  decide a page with the model, then act on it most urgent first: triage
                   records, incident open/join (escalation.service + grouping.finder), receipts
  decisions.py     each distinct post decided once per worker
  publish.py       after an action commits: dispatch stream (add, XACK), escalation chain, replies
  escalate.py      escalation steps as jobs, and what a fired step does (alert, count, page)
  sending.py       send replies: each message claimed once, its outcome recorded
  actions.py       what people do from the dashboard (acknowledge, claim, reply, merge...)
  live.py          the live feed to open screens
  sweep.py         re-drives whatever a crash or an outage left undone, from the database
  redisless.py     triage straight from the database while Redis is away
  media_archive.py a post's images and videos fetched once and kept
  drill.py         which posts are drill traffic
  metrics.py, notify.py  counters and external paging

The composition root (runtime/: CLI, worker process) and the web app (dashboard/) call these;
they call the domain packages (connectors, triage, grouping, escalation, evidence, models) and
never the web app.
"""
