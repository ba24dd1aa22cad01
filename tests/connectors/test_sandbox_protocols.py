"""The sandbox's wire format checked against the platforms' own specs, plus its helper endpoints."""
from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from atproto import models
from openapi_core.exceptions import OpenAPIError
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from connectors.sandbox import DEMO_SCENARIO, SandboxState, load_scenario
from connectors.sandbox.state import BLUESKY_SERVICE_DID, bluesky_did
from connectors.sandbox.x_api import x_user_id

SPECS = Path("/work/shared/specs")
X_HEADERS = {"authorization": "Bearer sandbox"}


@pytest.fixture(scope="module")
def x_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPECS / "x-api-v2" / "openapi.json"), config=Config(spec_validator_cls=None))


def _validate_x(spec: OpenAPI, method: str, path: str, response: httpx.Response, query: dict | None = None,
                body: dict | None = None) -> None:
    request = MockRequest("https://api.x.com", method, path, args=query or {},
                          data=json.dumps(body).encode() if body else None, content_type="application/json")
    spec.validate_response(request, MockResponse(response.content, status_code=response.status_code,
                                                 content_type="application/json"))


def test_x_responses_match_the_openapi_spec(sandbox, x_spec):
    state, url = sandbox
    mention = state.add_post("x", "@flare999 help", "ana", lat=51.5, lon=-0.1, author_location="Bath")
    state.add_post("x", "quiet", "ben", is_dm=True)
    query = {"max_results": "100", "tweet.fields": "created_at,geo,conversation_id,in_reply_to_user_id",
             "expansions": "author_id,geo.place_id", "user.fields": "location,username,name",
             "place.fields": "full_name,geo,country_code"}
    mentions = httpx.get(f"{url}/2/users/1000/mentions", params=query, headers=X_HEADERS)
    _validate_x(x_spec, "get", "/2/users/1000/mentions", mentions, query)
    empty = httpx.get(f"{url}/2/users/1000/mentions", params={"since_id": mention.external_id}, headers=X_HEADERS)
    _validate_x(x_spec, "get", "/2/users/1000/mentions", empty, {"since_id": mention.external_id})
    dms = httpx.get(f"{url}/2/dm_events", headers=X_HEADERS)
    _validate_x(x_spec, "get", "/2/dm_events", dms)
    tweet_body = {"text": "Received.", "reply": {"in_reply_to_tweet_id": mention.external_id}}
    tweet = httpx.post(f"{url}/2/tweets", json=tweet_body, headers=X_HEADERS)
    assert tweet.status_code == 201
    _validate_x(x_spec, "post", "/2/tweets", tweet, body=tweet_body)
    dm_path = f"/2/dm_conversations/with/{x_user_id('ben')}/messages"
    dm = httpx.post(url + dm_path, json={"text": "Are you safe?"}, headers=X_HEADERS)
    _validate_x(x_spec, "post", dm_path, dm, body={"text": "Are you safe?"})


def test_x_spec_catches_a_wrong_type(x_spec):
    bad = httpx.Response(201, json={"data": {"id": 1, "text": "x"}})
    with pytest.raises(OpenAPIError):
        _validate_x(x_spec, "post", "/2/tweets", bad, body={"text": "x"})


def _strict(body: dict, model) -> None:
    models.get_or_create(body, model, strict_string_format=True)


def test_bluesky_responses_match_the_lexicons(sandbox):
    state, url = sandbox
    state.add_post("bluesky", "@flare999.bsky.social fire", "ravi")
    state.add_post("bluesky", "cant talk", "quiet", is_dm=True)
    xrpc = f"{url}/xrpc"
    session = httpx.post(f"{xrpc}/com.atproto.server.createSession", json={"identifier": "flare999", "password": "p"})
    _strict(session.json(), models.ComAtprotoServerCreateSession.Response)
    assert "didDoc" not in session.json()
    auth = {"authorization": f"Bearer {session.json()['accessJwt']}"}
    _strict(httpx.post(f"{xrpc}/com.atproto.server.refreshSession", headers=auth).json(),
            models.ComAtprotoServerRefreshSession.Response)
    _strict(httpx.get(f"{xrpc}/app.bsky.actor.getProfile", params={"actor": BLUESKY_SERVICE_DID}).json(),
            models.AppBskyActorDefs.ProfileViewDetailed)
    notes = httpx.get(f"{xrpc}/app.bsky.notification.listNotifications", headers=auth).json()
    _strict(notes, models.AppBskyNotificationListNotifications.Response)
    record = {"repo": BLUESKY_SERVICE_DID, "collection": "app.bsky.feed.post",
              "record": {"$type": "app.bsky.feed.post", "text": "ok", "createdAt": "2026-01-01T00:00:00Z"}}
    _strict(httpx.post(f"{xrpc}/com.atproto.repo.createRecord", json=record, headers=auth).json(),
            models.ComAtprotoRepoCreateRecord.Response)
    convo = httpx.get(f"{xrpc}/chat.bsky.convo.getConvoForMembers", params={"members": bluesky_did("quiet")}).json()
    _strict(convo, models.ChatBskyConvoGetConvoForMembers.Response)
    sent = httpx.post(f"{xrpc}/chat.bsky.convo.sendMessage",
                      json={"convoId": convo["convo"]["id"], "message": {"text": "hi"}}).json()
    _strict(sent, models.ChatBskyConvoDefs.MessageView)
    _strict(httpx.get(f"{xrpc}/chat.bsky.convo.getLog").json(), models.ChatBskyConvoGetLog.Response)
    _strict(httpx.get(f"{xrpc}/chat.bsky.convo.listConvos").json(), models.ChatBskyConvoListConvos.Response)


def test_bluesky_notification_has_every_field_the_lexicon_requires(sandbox):
    state, url = sandbox
    state.add_post("bluesky", "hello", "ann")
    lexicon = json.loads((SPECS / "bluesky-lexicons/app/bsky/notification/listNotifications.json").read_text())
    required = set(lexicon["defs"]["notification"]["required"])
    note = httpx.get(f"{url}/xrpc/app.bsky.notification.listNotifications",
                     headers={"authorization": "Bearer t"}).json()["notifications"][0]
    assert required <= set(note)


@pytest.mark.parametrize("platform,path,header", [
    ("x", "/2/dm_events", "x-rate-limit-reset"),
    ("bluesky", "/xrpc/chat.bsky.convo.getLog", "ratelimit-reset"),
    ("reddit", "/message/unread/", "x-ratelimit-reset"),
])
def test_rate_limit_faults_carry_reset_headers(sandbox, platform, path, header):
    state, url = sandbox
    httpx.post(f"{url}/_sandbox/faults", json={platform: {"rate_limit_next": 1, "rate_limit_reset_seconds": 5}})
    limited = httpx.get(url + path, headers=X_HEADERS)
    assert limited.status_code == 429 and int(limited.headers[header]) > 0
    assert httpx.get(url + path, headers=X_HEADERS).status_code == 429  # still inside the window


def test_slow_responses_and_auth_checks(sandbox):
    _, url = sandbox
    assert httpx.get(f"{url}/2/users/me").status_code == 401
    assert httpx.get(f"{url}/message/unread/").status_code == 401
    httpx.post(f"{url}/_sandbox/faults", json={"x": {"slow_rate": 1.0, "slow_seconds": 0.3}})
    started = time.monotonic()
    assert httpx.get(f"{url}/2/users/me", headers={"authorization": "OAuth oauth_consumer_key=ck"}).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_outage_window_and_unknown_fault_names(sandbox):
    _, url = sandbox
    httpx.post(f"{url}/_sandbox/faults", json={"x": {"outage_for_seconds": 30}})
    assert httpx.get(f"{url}/2/dm_events", headers=X_HEADERS).status_code == 503
    assert httpx.post(f"{url}/_sandbox/faults", json={"x": {"nonsense": 1}}).status_code == 400


def test_helper_endpoints_and_page_escape_everything(sandbox):
    state, url = sandbox
    created = httpx.post(f"{url}/_sandbox/post", json={"platform": "x", "text": "<script>alert(1)</script>",
                                                        "author": "<b>x</b>", "lat": 1, "lon": 2})
    assert created.status_code == 201 and created.json()["external_id"]
    assert httpx.post(f"{url}/_sandbox/post", json={"platform": "myspace", "text": "hi"}).status_code == 400
    form = httpx.post(f"{url}/_sandbox/form", data={"platform": "bluesky", "text": "a&b", "author": "z",
                                                    "is_dm": "on"})
    assert form.status_code == 303
    page = httpx.get(url + "/").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert state.items[-1].is_dm
    assert httpx.get(f"{url}/_sandbox/outbox").json() == []


def test_scenario_endpoint_and_demo_file(sandbox):
    state, url = sandbox
    lines = '{"at": 0, "platform": "x", "text": "one", "author": "a"}\n{"at": 0.1, "platform": "reddit", ' \
            '"text": "two", "author": "b", "is_dm": true}\n'
    assert httpx.post(f"{url}/_sandbox/scenario?speed=10", content=lines).json() == {"scheduled": 2}
    assert httpx.post(f"{url}/_sandbox/scenario", content="not json").status_code == 400
    demo = load_scenario(DEMO_SCENARIO)
    assert 25 <= len(demo) <= 40 and {e.platform for e in demo} == {"x", "bluesky", "reddit"}
    assert any("downstairs" in e.text and e.is_dm for e in demo) and any(e.malformed for e in demo)
    deadline = time.monotonic() + 5
    while len(state.items) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [i.text for i in state.items] == ["one", "two"]


def test_state_survives_a_restart_through_its_json_file(tmp_path):
    path = tmp_path / "sandbox.json"
    first = SandboxState(path)
    item = first.add_post("reddit", "hello", "a", is_dm=True)
    first.record_sent("reddit", "dm", "reply", recipient="a")

    second = SandboxState(path)

    assert second.items[0].external_id == item.external_id and len(second.outbox) == 1
    assert second.add_post("x", "next", "b").seq == 3


def test_x_dms_reach_reporters_who_posted_after_earlier_dms(sandbox):
    """The DM endpoint finds a reporter by id among posts stored since its last answer; an id of
    nobody is refused."""
    state, url = sandbox

    def dm(author: str) -> int:
        path = f"/2/dm_conversations/with/{x_user_id(author)}/messages"
        return httpx.post(url + path, json={"text": "Received."}, headers=X_HEADERS).status_code

    state.add_post("x", "@flare999 smoke on Elm St", "early")
    assert dm("early") == 201
    state.add_post("x", "@flare999 the smoke is worse", "later", is_dm=True)
    assert (dm("later"), dm("nobody"), dm("early")) == (201, 400, 201)
