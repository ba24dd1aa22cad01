"""What the views show and record: escaping, audit on view, media reveal, admin, supervisor, field."""
from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from dashboard.routes.field import distance_km
from dashboard.routes.media import attached_media
from models import AuditEntry, GeoPoint, Incident, IncidentEvent, Post, User
from models.enums import EventKind
from models.events import append_event, session_chain_key, verify_chain
from tests.dashboard.conftest import drain, ingest, login, raw_post

HOSTILE = ("<script>alert('owned')</script><img src=x onerror=alert(1)> "
           "\u202eevil reversed\u202c " + "💥" * 300 + " help there is a fire in my kitchen and I am trapped")


@pytest.fixture
def hostile_incident(ctx, users):
    ingest(ctx, [raw_post("h1", HOSTILE, author="<b>attacker</b>", geo=GeoPoint(51.5, -0.12))])
    drain(ctx)
    with Session(ctx.engine) as s:
        return s.exec(select(Incident.id)).one()


@pytest.mark.parametrize("role,path", [("officer", "/feed"), ("officer", "/feed/rows"),
                                       ("dispatcher", "/incidents/{i}"),
                                       ("field", "/field?lat=51.5&lon=-0.12&radius_km=5")])
def test_hostile_text_is_escaped_everywhere(app, hostile_incident, role, path):
    client = login(app, role)
    response = client.get(path.format(i=hostile_incident))
    html = response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]  # and if escaping failed...
    assert "evil reversed" in html  # the post is shown ...
    assert "<script>alert('owned')" not in html and "<img src=x" not in html  # ... as text
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in html
    assert "<b>attacker</b>" not in html
    assert 'class="posttext" dir="auto"' in html  # isolated, wrapped, height-limited by the CSS


def test_stylesheet_contains_the_hostile_text_rules(app):
    from fastapi.testclient import TestClient

    css = TestClient(app).get("/static/flare.css").text
    rule = css[css.index(".posttext {"):].split("}", 1)[0]
    assert "overflow-wrap:anywhere" in rule and "max-height" in rule
    assert "unicode-bidi:isolate" in css


def test_viewing_an_incident_is_audited_and_logged(ctx, app, hostile_incident):
    client = login(app, "dispatcher")
    assert client.get(f"/incidents/{hostile_incident}").status_code == 200
    with Session(ctx.engine) as s:
        audit = s.exec(select(AuditEntry).where(AuditEntry.action == "view_incident")).all()
        assert [(a.username, a.object_type, a.object_id) for a in audit] == [
            ("dispatcher", "incident", str(hostile_incident))]
        events = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == hostile_incident)).all()
        viewed = [e for e in events if e.kind == EventKind.viewed.value]
        assert [e.actor for e in viewed] == ["dispatcher"]
        assert verify_chain(list(events), session_chain_key(s)) is None


def test_feed_view_is_audited_and_filters_apply(ctx, app, users):
    ingest(ctx, [raw_post("f1", "help my dad collapsed not breathing", author="a1"),
                 raw_post("f2", "lovely weather today", author="a2", platform="bluesky")])
    drain(ctx)
    client = login(app, "officer")
    assert "lovely weather" in client.get("/feed").text
    only_x = client.get("/feed?platform=x").text
    assert "collapsed" in only_x and "lovely weather" not in only_x
    by_text = client.get("/feed?q=weather").text
    assert "lovely weather" in by_text and "collapsed" not in by_text
    critical = client.get("/feed?urgency=critical&window=1h").text
    assert "collapsed" in critical and "lovely weather" not in critical
    assert "lovely weather" in client.get("/feed?platform=nonsense").text  # unknown filter ignored
    with Session(ctx.engine) as s:
        assert len(s.exec(select(AuditEntry).where(AuditEntry.action == "view_feed")).all()) == 5


def test_malformed_posts_are_flagged_on_the_feed(ctx, app, users):
    ingest(ctx, [raw_post("bad", "", malformed=True, malformed_reason="truncated JSON")])
    drain(ctx)
    html = login(app, "officer").get("/feed").text
    assert "MALFORMED: truncated JSON" in html and 'class="post malformed' in html


def test_media_is_hidden_until_revealed_and_the_reveal_is_recorded(ctx, app, users, media_host, archiving):
    media_host.files["/v.mp4"] = ("video/mp4", b"\x00\x00\x00\x18ftypmp42 a video")
    payload = json.dumps({"id": "g1", "media": [{"type": "video", "url": f"{media_host.url}/v.mp4"},
                                                {"type": "photo", "url": "javascript:alert(1)"}]})
    [post_id] = ingest(ctx, [raw_post("g1", "man with a knife attacking people", raw_payload=payload)])
    drain(ctx)
    officer = login(app, "officer")
    html = officer.get("/feed").text
    assert media_host.url not in html  # no address is in the page before a click
    assert "javascript:alert" not in html and html.count('class="media-cw"') == 1
    r = officer.post(f"/posts/{post_id}/media/0/reveal", headers={"x-csrf-token": officer.csrf})
    body = r.json()
    assert (body["ok"], body["kind"], body["url"], body["exposure"]) == (True, "video", f"/posts/{post_id}/media/0/file", 1)
    with Session(ctx.engine) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "media_revealed")).one().username == "officer"
        revealed = s.exec(select(IncidentEvent).where(IncidentEvent.kind == EventKind.media_revealed.value)).one()
        assert revealed.actor == "officer" and revealed.data["post_id"] == post_id
    feed_page = officer.get("/feed").text
    assert 'id="exposure-count" data-break-at="10">1<' in feed_page
    assert '<span id="break-hint" hidden>' in feed_page  # one item: no nudge yet
    sup = login(app, "supervisor").get("/supervisor").text
    officer_row = sup[sup.index("Officer Tester"):].split("</tr>", 1)[0]
    assert "<td class=\"\">1</td>" in officer_row


def test_attached_media_accepts_platform_shapes_and_only_web_addresses():
    post = Post(platform="x", external_id="1", raw_payload=json.dumps({
        "includes": {"media": [{"type": "photo", "url": "https://a/1.jpg"},
                               {"type": "animated_gif", "preview_image_url": "https://a/2.gif"}]},
        "embed": {"images": [{"fullsize": "data:image/png;base64,AAAA"}]}}))
    assert [(m.kind, m.url) for m in attached_media(post)] == [("image", "https://a/1.jpg"), ("video", "https://a/2.gif")]
    assert attached_media(Post(platform="x", external_id="2", raw_payload="{not json")) == []


def test_a_deeply_nested_raw_payload_does_not_break_the_feed(ctx, app, users):
    deep = '{"media": ' + "[" * 100_000 + "]" * 100_000 + "}"
    [post_id] = ingest(ctx, [raw_post("deep", "help there is a fire in the hall", raw_payload=deep)])
    drain(ctx)
    officer = login(app, "officer")
    response = officer.get("/feed")
    assert response.status_code == 200 and "fire in the hall" in response.text
    assert officer.get("/feed/rows").status_code == 200
    r = officer.post(f"/posts/{post_id}/media/0/reveal", headers={"x-csrf-token": officer.csrf})
    assert r.status_code == 404


def test_queue_orders_by_priority_then_age_and_shows_timers(ctx, app, users):
    ingest(ctx, [raw_post("q1", "someone is breaking into my car right now", author="q1"),
                 raw_post("q2", "help my dad collapsed not breathing", author="q2")])
    drain(ctx)
    html = login(app, "dispatcher").get("/queue").text
    with Session(ctx.engine) as s:
        rows = {i.urgency: i.id for i in s.exec(select(Incident))}
    assert "critical" in rows
    first = html.index('data-incident="')
    assert html[first:first + 30].startswith(f'data-incident="{rows["critical"]}"')
    assert 'class="timer" data-since=' in html and "step 1" in html


def test_mute_is_per_person(ctx, app, users):
    a = login(app, "dispatcher")
    assert a.post("/me/alerts", data={"csrf_token": a.csrf, "muted": "1"}).status_code == 303
    assert 'data-muted="1"' in a.get("/queue").text
    assert 'data-muted="0"' in login(app, "supervisor").get("/queue").text
    with Session(ctx.engine) as s:
        assert s.exec(select(User).where(User.username == "dispatcher")).one().muted_alerts is True


def test_supervisor_sees_breaches_backlog_and_on_shift(ctx, app, users):
    ingest(ctx, [raw_post("s1", "help my dad collapsed not breathing")])
    drain(ctx)
    ingest(ctx, [raw_post("s2", "waiting in the backlog")])  # not drained: pending triage
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(Incident.id)).one()
        append_event(s, incident_id, EventKind.sla_breach, "sweep", {"sla": "ack", "seconds": 95})
        s.commit()
    login(app, "officer").get("/feed")  # the officer is on shift
    html = login(app, "supervisor").get("/supervisor").text
    assert f'href="/incidents/{incident_id}"' in html
    assert "critical medical not acknowledged within 60 s; still waiting" in html  # words, not a dict
    assert "sla: ack" not in html
    assert "posts waiting for triage</td><td>1</td>" in html
    assert "Officer Tester" in html
    assert "Connectors" in html


def test_field_feed_lists_only_incidents_inside_the_radius(ctx, app, users):
    ingest(ctx, [raw_post("n1", "help my dad collapsed not breathing", author="n1", geo=GeoPoint(53.80, -1.55)),
                 raw_post("n2", "house fire flames everywhere", author="n2", geo=GeoPoint(51.50, -0.12))])
    drain(ctx)
    field = login(app, "field")
    html = field.get("/field?lat=53.79&lon=-1.54&radius_km=5").text
    assert "collapsed not breathing" in html and "house fire" not in html
    assert "Latitude, longitude" in field.get("/field?lat=north&lon=1").text
    assert 260 < distance_km(53.8, -1.55, 51.5, -0.12) < 285  # Leeds to London


def test_admin_validates_and_saves_policies(ctx, app, users, settings):
    admin = login(app, "admin")
    bad = admin.post("/admin/policies", data={"csrf_token": admin.csrf, "action": "save",
                                              "policy": "critical:\n  steps: []\nurgent:\n  steps: []\n"})
    assert bad.status_code == 422 and 'id="policy-errors"' in bad.text
    target = settings.data_dir / "policies.yaml"
    assert not target.exists()
    broken = admin.post("/admin/policies", data={"csrf_token": admin.csrf, "action": "save", "policy": "a: [b"})
    assert broken.status_code == 422 and "Not valid YAML" in broken.text
    good = ("critical:\n  steps:\n    - {after: 0, action: alert, targets: [dispatchers]}\n"
            "high:\n  steps:\n    - {after: 0, action: alert, targets: [dispatchers]}\n")
    r = admin.post("/admin/policies", data={"csrf_token": admin.csrf, "action": "save", "policy": good})
    assert r.status_code == 303
    assert target.read_text() == good
    with Session(ctx.engine) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "save_policies")).one().username == "admin"


def test_admin_manages_people_and_tokens(ctx, app, users):
    admin = login(app, "admin")
    r = admin.post("/admin/users", data={"csrf_token": admin.csrf, "username": "newbie", "role": "officer",
                                         "password": "long-enough-password", "display_name": "New Officer"})
    assert r.status_code == 200 and "shown once" in r.text
    token = r.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert admin.get("/api/v1/posts", headers={"authorization": f"Bearer {token}"}).status_code == 200
    with Session(ctx.engine) as s:
        newbie = s.exec(select(User).where(User.username == "newbie")).one()
    r = admin.post(f"/admin/users/{newbie.id}/token", data={"csrf_token": admin.csrf})
    new_token = r.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert new_token != token
    assert admin.get("/api/v1/posts", headers={"authorization": f"Bearer {token}"}).status_code == 401
    admin.post(f"/admin/users/{newbie.id}/active", data={"csrf_token": admin.csrf, "active": "0"})
    assert admin.get("/api/v1/posts", headers={"authorization": f"Bearer {new_token}"}).status_code == 401
    own = admin.post(f"/admin/users/{users['admin'].id}/active", data={"csrf_token": admin.csrf, "active": "0"},
                     headers={"x-requested-with": "flare"})
    assert own.status_code == 422
    short = admin.post("/admin/users", data={"csrf_token": admin.csrf, "username": "x", "role": "officer",
                                             "password": "short"}, headers={"x-requested-with": "flare"})
    assert short.status_code == 422


def test_incident_page_shows_the_reporters_history_and_other_platforms(ctx, app, users):
    ingest(ctx, [raw_post("old1", "is the bridge closed today", author="sam"),
                 raw_post("bs1", "posting here too: anyone near the canal?", author="sam", platform="bluesky"),
                 raw_post("stranger", "unrelated chatter", author="someone")])
    drain(ctx)
    ingest(ctx, [raw_post("now1", "help my dad collapsed not breathing", author="sam")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(Incident.id).where(Incident.urgency == "critical")).one()
    html = login(app, "dispatcher").get(f"/incidents/{incident_id}").text
    history = html[html.index("Reporter's history"):html.index("Same handle on other platforms")]
    elsewhere = html[html.index("Same handle on other platforms"):html.index('<aside class="col-side">')]
    assert "is the bridge closed today" in history and "unrelated chatter" not in history
    assert "anyone near the canal" in elsewhere and "is the bridge closed" not in elsewhere


def test_buttons_are_offered_only_to_roles_that_may_press_them(ctx, app, users):
    ingest(ctx, [raw_post("b1", "help my dad collapsed not breathing")])
    drain(ctx)
    assert "act-escalate" in login(app, "officer").get("/feed").text
    assert "act-escalate" not in login(app, "admin").get("/feed").text
    assert 'class="ack"' in login(app, "dispatcher").get("/queue").text
    assert 'class="ack"' not in login(app, "admin").get("/queue").text


def test_live_refreshes_do_not_keep_an_unattended_session_alive(ctx, app, users, monkeypatch):
    import time as time_module

    client = login(app, "officer")
    start = time_module.time()
    idle = ctx.settings.dashboard.session_idle_minutes * 60
    monkeypatch.setattr(time_module, "time", lambda: start + idle * 0.6)
    assert client.get("/feed/rows").status_code == 200  # a background refresh, still signed in
    assert client.get("/map/incidents.json").status_code == 200
    monkeypatch.setattr(time_module, "time", lambda: start + idle * 1.2)
    r = client.get("/feed")
    # idle since sign-in: signed out, told so, and sent back to the feed afterwards
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Ffeed&expired=1"
    assert "without activity" in client.get(r.headers["location"]).text


def test_a_real_page_view_does_extend_the_session(ctx, app, users, monkeypatch):
    import time as time_module

    client = login(app, "officer")
    start = time_module.time()
    idle = ctx.settings.dashboard.session_idle_minutes * 60
    monkeypatch.setattr(time_module, "time", lambda: start + idle * 0.6)
    assert client.get("/feed").status_code == 200
    monkeypatch.setattr(time_module, "time", lambda: start + idle * 1.2)
    assert client.get("/feed").status_code == 200


def test_live_refreshes_are_audited_when_they_show_new_posts(ctx, app, users):
    ingest(ctx, [raw_post("r1", "help my dad collapsed not breathing", author="r1")])
    drain(ctx)
    officer = login(app, "officer")
    officer.get("/feed")
    officer.get("/feed/rows")
    officer.get("/feed/rows")  # nothing new: no further entry
    ingest(ctx, [raw_post("r2", "house fire flames everywhere", author="r2")])
    officer.get("/feed/rows")  # a new post shown: recorded
    with Session(ctx.engine) as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.action == "view_feed").order_by(AuditEntry.id)).all()
    assert [(r.detail["refresh"], r.detail["newest"]) for r in rows] == [(False, 1), (True, 2)]


@pytest.mark.parametrize("ended_by", ["idle", "sign-out"])
def test_an_action_racing_the_end_of_its_session_is_told_to_sign_in_not_refused_as_forged(
        ctx, app, users, monkeypatch, ended_by):
    """The page's live stream or a refresh ends the session while an action is on its way with the
    old cookie: the action is answered 401 (the page keeps it and offers it after sign-in), never
    403 "CSRF token missing", which would drop it."""
    import time as time_module

    ingest(ctx, [raw_post("r1", "help my dad collapsed not breathing", author="r1")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident_id = s.exec(select(Incident.id)).first()
    client = login(app, "dispatcher")
    old_cookie = client.cookies.get("flare_session")
    if ended_by == "idle":
        start = time_module.time()
        idle = ctx.settings.dashboard.session_idle_minutes * 60
        monkeypatch.setattr(time_module, "time", lambda: start + idle * 1.2)
        assert client.get("/queue/rows", headers={"X-Requested-With": "flare"}).status_code == 401
    else:
        assert client.post("/logout", data={"csrf_token": client.csrf}).status_code == 303
    assert client.cookies.get("flare_session") != old_cookie  # the session that ended has a new cookie
    client.cookies.clear()
    client.cookies.set("flare_session", old_cookie)  # ... but this action left with the old one
    r = client.post(f"/incidents/{incident_id}/acknowledge", data={"csrf_token": client.csrf},
                    headers={"X-Requested-With": "flare"})
    assert r.status_code == 401, r.text
    assert r.json()["expired"] is (ended_by == "idle")
    with Session(ctx.engine) as s:
        assert s.get(Incident, incident_id).status == "queued"
