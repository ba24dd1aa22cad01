"""A triage job that meets a database refusing connections waits for it and runs the moment it
answers: a cry for help stored just before an outage is queued as soon as the outage ends, not
after the sweep's grace period (10 s by default) and its next round."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from connectors.intake import persist_posts
from flows.context import AppContext, set_process_context
from flows import triage_batch
from models.domain import RawPost
from models.enums import TriageState
from models.tables import Incident, IncidentPost, Post
from tests.tcp_proxy import TcpProxy
from tests.fakes import AcceptingReplier
from tests.waiting import wait_for


def test_a_triage_job_rides_out_a_database_outage(settings, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the outage needs PostgreSQL behind a cuttable proxy")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    ctx = AppContext.build(settings.model_copy(update={"database_url": proxied}))
    ctx.repliers = {"x": AcceptingReplier()}
    set_process_context(ctx)
    outcome: list = []
    try:
        ctx.pipeline  # noqa: B018 - loaded before the outage, as a worker's preload does
        raw = RawPost(platform="x", external_id="7", text="my dad collapsed and is not breathing, 12 High Street Leeds",
                      raw_payload="{}", author_id="a7", author_handle="a7")
        post_id = persist_posts(ctx.engine, [raw])[0].post_id
        proxy.refuse()

        def job() -> None:
            try:
                outcome.append(triage_batch.triage_batch([post_id], ctx))
            except Exception as exc:  # noqa: BLE001 - what the worker would record as a failed job
                outcome.append(exc)

        thread = threading.Thread(target=job, daemon=True)
        thread.start()
        # The job has met the refusal and asked again: it is waiting, not failed.
        wait_for(lambda: proxy.refused >= 3 or outcome, 30, "the job to meet the outage")
        assert not outcome, f"the job ended during the outage: {outcome}"
        proxy.accept()
        thread.join(timeout=30)
        assert outcome and isinstance(outcome[0], dict) and outcome[0].get("triaged") == 1, outcome
        with Session(ctx.engine) as s:
            assert s.get(Post, post_id).triage_state == TriageState.done.value
            incident_id = s.exec(select(IncidentPost.incident_id).where(IncidentPost.post_id == post_id)).one()
            assert s.get(Incident, incident_id).queued_at is not None  # in front of a dispatcher
    finally:
        proxy.accept()
        set_process_context(None)
        ctx.close()
        proxy.close()
