"""With configure_logging active, application logs carry no phone numbers, emails or post text."""
from __future__ import annotations

import io
import logging
import re

import pytest
from runtime.worker import FlareWorker
from sqlmodel import Session, select

from connectors.intake import persist_posts
from flows import triage_queue
from flows import actions
from flows.context import WORKER_QUEUES, AppContext, set_process_context
from runtime.logging_setup import configure_logging, remove_logging
from dashboard.security import create_user
from models import DeliveryReceipt, Incident, IncidentStatus, Post, RawPost
from triage.prescreen import lane_for

POSTS = [
    ("L1", "help my dad collapsed not breathing at 12 Quokka Street Leeds LS1 4AP call 07700 900123"),
    ("L2", "fire in the flat at 221b Baker Street NW1 6XE, email me jo.reporter@example.com or +44 20 7946 0958"),
    ("L3", "man with a knife outside 1600 Pennsylvania Ave, Washington DC 20500 ring (415) 555-2671"),
]
PERSONAL = ["07700 900123", "07700900123", "jo.reporter@example.com", "7946 0958", "555-2671",
            "Quokka Street", "LS1 4AP", "Baker Street", "Pennsylvania Ave"]


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    level = logging.getLogger().level
    handler = configure_logging("DEBUG", stream=stream)
    yield stream
    remove_logging(handler)
    logging.getLogger().setLevel(level)


class ChattyReplier:
    """A platform double that, like a careless connector might, logs what it sends and to whom."""

    platform = "x"

    def __init__(self) -> None:
        self.sent = []
        self.log = logging.getLogger("flare.test.replier")

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request) -> DeliveryReceipt:
        self.log.info("sending %s to %s", request.kind, request.recipient_id, extra={"text": request.text})
        self.sent.append(request)
        return DeliveryReceipt(ok=True, platform_message_id=f"m{len(self.sent)}")


def test_filter_masks_message_args_exceptions_and_drops_text_extras(log_stream):
    log = logging.getLogger("flare.test")
    log.warning("reporter %s at %s", "07700 900123", "jo@example.com", extra={"text": "the post itself"})
    try:
        raise ValueError("could not parse 12 High Street, call +1 202 555 0143")
    except ValueError:
        log.exception("parse failed for %s", "jo@example.com")
    log.info("post %d took %.1f ms", 12345, 22.5)  # ids and timings survive

    class UnreadResponse:  # like a streamed HTTP response: reading .text raises
        @property
        def text(self):
            raise RuntimeError("body not read")

    log.info("got %s", UnreadResponse())  # logging it must not raise
    out = log_stream.getvalue()
    assert "07700" not in out and "jo@example.com" not in out and "202 555" not in out
    assert "High Street" not in out and "[phone]" in out and "[email]" in out
    assert "post 12345 took 22.5 ms" in out and "ValueError" in out and "got <" in out


def test_text_extra_is_dropped_before_any_handler_formats_it(log_stream):
    seen = []

    class Capture(logging.Handler):
        def emit(self, record):
            seen.append((record.getMessage(), getattr(record, "text", None)))

    capture = Capture()
    logging.getLogger().addHandler(capture)  # added after configure_logging: still masked
    try:
        configure_logging("DEBUG", stream=log_stream)  # re-run puts the filter on the new handler too
        logging.getLogger("flare.test").info("mail %s", "a.b@example.org", extra={"text": "secret words"})
    finally:
        logging.getLogger().removeHandler(capture)
    assert seen == [("mail [email]", "[dropped]")]


def _drain(ctx: AppContext) -> None:
    FlareWorker([ctx.queues[q] for q in WORKER_QUEUES], connection=ctx.redis).work(burst=True)


def test_full_flow_logs_no_personal_data_or_post_text(settings, log_stream):
    ctx = AppContext.build(settings)
    ctx.repliers = {"x": ChattyReplier()}
    set_process_context(ctx)
    try:
        raws = [RawPost(platform="x", external_id=ext, text=text, raw_payload='{"id":"%s","text":"%s"}' % (ext, text),
                        author_id=f"a{ext}", author_handle=f"@reporter_{ext}") for ext, text in POSTS]
        stored = persist_posts(ctx.engine, raws, lambda r: lane_for(r.text, r.is_dm))
        # Careless logging of the objects themselves: their repr would print the text.
        logging.getLogger("flare.intake").info("stored %d posts: %s", len(stored), raws)
        for p in stored:
            triage_queue.enqueue(ctx, [(p.post_id, p.lane)])
        _drain(ctx)
        with Session(ctx.engine, expire_on_commit=False) as s:
            incidents = s.exec(select(Incident)).all()
            logging.getLogger("flare.test").debug("first post %r", s.get(Post, stored[0].post_id))
            alice, _ = create_user(s, "alice", "pw-alice-123", "dispatcher")
            s.commit()
        assert incidents, "the flow must reach an incident for this test to mean anything"
        for incident in incidents:
            if incident.status == IncidentStatus.queued.value:
                actions.acknowledge(ctx, incident.id, alice)
        _drain(ctx)
        with Session(ctx.engine) as s:
            assert any(i.status == IncidentStatus.acknowledged.value for i in s.exec(select(Incident)))
    finally:
        set_process_context(None)
        ctx.close()
    out = log_stream.getvalue()
    assert "sending dm to" in out  # the replier's records reached the log, masked
    assert "<RawPost L1>" in out and "first post '<Post " in out
    for value in PERSONAL:
        assert value not in out, f"{value!r} leaked into the log"
    assert not re.search(r"[\w.]+@example\.com", out)
    # Post text itself: no 4-word run from any post appears in the log.
    for _ext, text in POSTS:
        words = text.split()
        for i in range(len(words) - 3):
            assert " ".join(words[i:i + 4]) not in out, f"post text leaked: {' '.join(words[i:i + 4])!r}"
