"""The 3 a.m. console: queue rows that say what and where, honest supervisor numbers, paging."""
from __future__ import annotations

import json

import pytest

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from dashboard.routes.queue_lines import best_place, cad_lines, first_words
from models import Incident, IncidentEvent, IncidentPost, Post, TriageRecord
from models.enums import EventKind
from models.events import append_event
from tests.dashboard.conftest import drain, ingest, login, raw_post


@given(st.text(max_size=400))
def test_first_words_is_one_bounded_line_of_the_text(text):
    words, truncated = first_words(text)
    assert "\n" not in words and len(words) <= 110
    assert words == "" or words.split()[0] in text
    assert truncated == (words.split() != text.split())


def test_best_place_prefers_the_most_specific_mention_and_skips_profile_text():
    mentions = [{"text": "Leeds", "kind": "place", "confidence": 0.9, "lat": 53.8, "lon": -1.5},
                {"text": "my house, Leeds", "kind": "profile", "confidence": 1.0},
                {"text": "12 High St", "kind": "address", "confidence": 0.5, "lat": None}]
    assert best_place(mentions) == ("12 High St", False)
    assert best_place([mentions[0]]) == ("Leeds", True)
    assert best_place([mentions[1]]) == ("", False)
    assert best_place([]) == ("", False)


def test_queue_row_shows_words_address_kind_count_and_failed_pages(ctx, app, users):
    text = "help my dad collapsed not breathing at 12 High Street <b>now</b> please hurry we are upstairs"
    ingest(ctx, [raw_post("q1", text, author="r1")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident = s.exec(select(Incident)).one()
        record = s.exec(select(TriageRecord)).one()
        # What the full pipeline extracts from this text (the rule baseline used here finds no places).
        record.locations = [{"text": "12 High Street", "kind": "address", "source": "text", "lat": None,
                             "lon": None, "confidence": 0.85}]
        s.add(record)
        append_event(s, incident.id, EventKind.notification, "escalation",
                     {"action": "notify_external", "target": "duty_manager", "channel": "", "recipient": "",
                      "ok": False, "error": "no notifier configured for this target"})
        s.commit()
        line = cad_lines(s, [incident.id])[incident.id]
    assert line.first_words.startswith("help my dad collapsed") and line.words_truncated
    assert len(line.failed_pages) == 1
    html = login(app, "dispatcher").get("/queue").text
    row = html[html.index(f'data-incident="{incident.id}"'):]
    row = row[:row.index("</tr>")]
    assert "“help my dad collapsed not breathing at 12 High Street &lt;b&gt;now&lt;/b&gt;" in row
    assert "<b>now</b>" not in row
    assert "1 report" in row and "PAGE FAILED ×1" in row and "no notifier configured" in row
    where = row.split('class="where"')[1]
    assert "12 High Street" in where and "named, not on the map" in where and "location unknown" not in where


def test_supervisor_is_honest_about_connectors_waiting_breaches_and_failed_pages(ctx, app, users):
    ingest(ctx, [raw_post("s1", "help my dad collapsed not breathing", author="r1"),
                 raw_post("s2", "house fire flames everywhere people trapped", author="r2")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incidents = s.exec(select(Incident).order_by(Incident.id)).all()
        assert len(incidents) == 2 and all(i.status == "queued" for i in incidents)
        append_event(s, incidents[0].id, EventKind.sla_breach, "escalation",
                     {"ack_sla_s": 60.0, "due_at": "2026-01-01T00:00:00+00:00", "lateness_s": 0.1})
        append_event(s, incidents[1].id, EventKind.notification, "escalation",
                     {"action": "notify_external", "target": "duty_manager", "channel": "", "recipient": "",
                      "ok": False, "error": "no notifier configured for this target"})
        s.commit()
    client = login(app, "supervisor")
    for path in ("/supervisor", "/supervisor/cards"):
        html = client.get(path).text
        # Both incidents wait: none was handed to a console yet, so "pending" alone would say 0.
        assert 'id="queued-incidents" class="error">2<' in html
        assert '<td id="dispatch-unacknowledged">2 <small class="muted">(2 + 0)</small>' in html
        assert "not acknowledged within 60 s; still waiting" in html
        assert "ack_sla_s" not in html and "lateness_s" not in html  # no raw dictionaries
        assert "1 page failed this shift" in html and "no notifier configured" in html
        assert "No paging channel is set up" in html
    assert 'data-refresh="/supervisor/cards"' in client.get("/supervisor").text


def test_connectors_card_shows_reported_health(ctx, app, users, monkeypatch):
    from dashboard.routes import supervisor

    monkeypatch.setattr(supervisor, "connector_health", lambda c: [
        {"name": "x:mentions", "platform": "x", "in_outage": False, "rate_limited": False,
         "consecutive_failures": 0, "seconds_since_success": 3.0, "lag_seconds": 0.5, "last_error": ""}])
    html = login(app, "supervisor").get("/supervisor").text
    connectors = html[html.index("<h2>Connectors</h2>"):]
    assert "No connector has reported yet" not in connectors
    assert "x:mentions" in connectors and '<span class="chip ok">ok</span>' in connectors


def _fire_steps_until_supervisor(ctx, incident_id: int) -> dict:
    """Record the chain's steps up to notify_supervisor as the escalation runner would, then page."""
    from flows.notify import notify_all

    with Session(ctx.engine, expire_on_commit=False) as s:
        incident = s.get(Incident, incident_id)
        steps = incident.policy_snapshot["steps"]
        fired = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id,
                                                   IncidentEvent.kind == EventKind.escalation_step.value)).all()
        number = next(n for n, st_ in enumerate(steps) if st_["action"] == "notify_supervisor")
        for n in range(len(fired), number + 1):
            append_event(s, incident_id, EventKind.escalation_step, "escalation",
                         {"kind": "step", "number": n, "action": steps[n]["action"],
                          "targets": steps[n].get("targets", [])})
        s.commit()
    notify_all(ctx, incident, steps[number])
    return steps[number]


def test_the_demo_paging_inbox_receives_a_real_page_and_the_incident_says_so(ctx, app, users, tmp_path):
    from config.settings import NotifierSettings
    from flows.notify import set_registry
    from runtime.paging_inbox import paging_env, received, start_inbox
    from escalation.notifiers import build_registry
    from tests.dashboard.conftest import _free_port

    port = _free_port()
    inbox = start_inbox("127.0.0.1", port, tmp_path / "inbox")
    try:
        env = paging_env("127.0.0.1", port)
        settings = ctx.settings.model_copy(update={"notifiers": NotifierSettings(
            smtp_host="127.0.0.1", smtp_port=port, smtp_from=env["FLARE_NOTIFIERS__SMTP_FROM"],
            smtp_starttls=env["FLARE_NOTIFIERS__SMTP_STARTTLS"] == "true",
            routes=json.loads(env["FLARE_NOTIFIERS__ROUTES"]))})
        set_registry(ctx, build_registry(settings))
        ingest(ctx, [raw_post("p1", "help my dad collapsed not breathing at 12 High Street", author="r1")])
        drain(ctx)
        with Session(ctx.engine) as s:
            incident_id = s.exec(select(Incident.id)).one()
        _fire_steps_until_supervisor(ctx, incident_id)
    finally:
        inbox.stop()
    pages = received(tmp_path / "inbox")
    assert [p["to"] for p in pages] == ["duty-supervisor@flare.demo"]
    assert f"#{incident_id}" in pages[0]["subject"] and "/queue" in pages[0]["body"]
    assert "High Street" not in pages[0]["body"] and "collapsed" not in pages[0]["body"]  # no personal data
    html = login(app, "dispatcher").get(f"/incidents/{incident_id}").text
    chain = html[html.index('<ol class="chain">'):]
    chain = chain[:chain.index("</ol>")]
    assert "paged duty-supervisor@flare.demo via email" in chain and 'class="failed"' not in chain


def test_a_failed_page_is_red_on_the_incident_not_fired(ctx, app, users):
    from flows.notify import set_registry
    from escalation.notifiers import NotifierRegistry

    set_registry(ctx, NotifierRegistry())  # nothing configured: the page cannot go anywhere
    ingest(ctx, [raw_post("f1", "help my dad collapsed not breathing", author="r1")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(Incident.id)).one()
    _fire_steps_until_supervisor(ctx, incident_id)
    html = login(app, "dispatcher").get(f"/incidents/{incident_id}").text
    chain = html[html.index('<ol class="chain">'):]
    failed = chain[chain.index('<li class="failed">'):]
    failed = failed[:failed.index("</li>")]
    assert "notify_supervisor" in failed and "FAILED" in failed and "no notifier configured" in failed
    assert "fired" not in failed
    assert "PAGE FAILED ×1" in login(app, "dispatcher").get("/queue").text


def test_demo_fresh_forgets_earlier_runs_but_keeps_logins(tmp_path):
    from config import Settings
    from runtime.demo import DEMO_PASSWORD_FILE, FreshRefused, fresh_start

    for name in ("flare.db", "sandbox-state.json", DEMO_PASSWORD_FILE, "secret_key"):
        (tmp_path / name).write_text("x")
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "appendonly.aof.1.incr.aof").write_text("x")
    settings = Settings(data_dir=tmp_path, database_url="", redis_url="")
    assert sorted(fresh_start(settings)) == ["appendonlydir", "flare.db", "sandbox-state.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEMO_PASSWORD_FILE, "secret_key"]
    with pytest.raises(FreshRefused):
        fresh_start(Settings(data_dir=tmp_path, database_url="postgresql://db/flare", redis_url=""))


def test_demo_fresh_forgets_the_old_runs_checkpoints_but_keeps_the_keys(tmp_path):
    from config import Settings
    from runtime.demo import fresh_start

    settings = Settings(data_dir=tmp_path / "data", database_url="", redis_url="")
    settings.data_dir.mkdir()
    (settings.data_dir / "flare.db").write_text("x")
    settings.resolved_checkpoint_file.parent.mkdir(parents=True)
    settings.resolved_checkpoint_file.write_text('{"number": 1}\n')
    settings.resolved_key_dir.mkdir(parents=True)
    (settings.resolved_key_dir / "keys.json").write_text("{}")
    assert sorted(fresh_start(settings)) == ["checkpoints.jsonl", "flare.db"]
    assert not settings.resolved_checkpoint_file.exists()
    assert (settings.resolved_key_dir / "keys.json").exists()


def test_feed_search_keeps_underscores_and_percent_literally(ctx, app, users):
    ingest(ctx, [raw_post("u1", "help please", author="jo_smith"), raw_post("u2", "help please", author="joXsmith")])
    drain(ctx)
    html = login(app, "officer").get("/feed", params={"q": "jo_smith"}).text
    assert "@jo_smith" in html and "@joXsmith" not in html


def test_attach_to_has_no_default_and_an_empty_choice_attaches_nothing(ctx, app, users):
    ingest(ctx, [raw_post("a1", "help my dad collapsed not breathing", author="r1")])
    drain(ctx)
    ingest(ctx, [raw_post("a2", "lol this is a joke", author="r2")])
    drain(ctx)
    client = login(app, "officer")
    html = client.get("/feed").text
    assert '<option value="" selected disabled>— choose an incident —</option>' in html
    with Session(ctx.engine) as s:
        joke = s.exec(select(Post).where(Post.external_id == "a2")).one()
    r = client.post(f"/posts/{joke.id}/attach", data={"csrf_token": client.csrf, "incident_id": ""},
                    headers={"x-requested-with": "flare"})
    assert r.status_code == 422 and "Choose the incident" in r.json()["detail"]
    with Session(ctx.engine) as s:
        assert s.exec(select(IncidentPost).where(IncidentPost.post_id == joke.id)).first() is None
