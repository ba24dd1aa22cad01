"""Jobs queued by an earlier version under a function path that has since moved still run: RQ
stores the path as a string, and the worker's job class resolves the old paths (a rolling
upgrade drains the queues instead of failing those jobs)."""
from __future__ import annotations

import pytest
from rq import Queue
from rq.job import Job

from flows import escalate, sending, triage_batch
from runtime.job_paths import MODEL_JOBS, MOVED, FlareJob


@pytest.mark.parametrize("old_path", sorted(MOVED))
def test_a_job_queued_under_a_moved_path_resolves_to_its_new_function(redis_conn, old_path):
    queued = Queue("job-paths-test", connection=redis_conn).enqueue(old_path, 1)
    with pytest.raises((ImportError, AttributeError, ValueError)):
        _ = Job.fetch(queued.id, connection=redis_conn).func  # what a plain RQ worker would do
    assert FlareJob.fetch(queued.id, connection=redis_conn).func is MOVED[old_path]


def test_the_moved_jobs_are_the_current_ones():
    assert MOVED["dashboard.jobs.send_message"] is sending.send_message
    assert MOVED["dashboard.escalation_runner.escalation_step"] is escalate.escalation_step
    assert "dashboard.jobs.triage_post" in MODEL_JOBS  # an old triage job still takes the model lock


def test_a_current_path_resolves_as_rq_does(redis_conn):
    queued = Queue("job-paths-test", connection=redis_conn).enqueue(escalate.STEP_FUNCTION, 1, "token")
    assert FlareJob.fetch(queued.id, connection=redis_conn).func is escalate.escalation_step


def test_an_old_triage_job_runs_as_a_page_of_one(monkeypatch):
    pages = []
    monkeypatch.setattr(triage_batch, "triage_batch", lambda post_ids, ctx=None: pages.append(post_ids) or {})
    MOVED["dashboard.jobs.triage_post"](42)
    assert pages == [[42]]
