"""X API v2 as the sandbox speaks it: enough for tweepy's Client, shaped per the published spec."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from connectors.sandbox.faults import shape_listing, wants_garbage
from connectors.sandbox.state import X_SERVICE_USER_ID, Item, SandboxState, hash_text

PROBLEM_BASE = "https://api.twitter.com/2/problems/"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _epoch(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else 0.0
    except ValueError:
        return 0.0


def x_user_id(author: str) -> str:
    return str(10_000 + hash_text(author) % 10**15)


def _user(item: Item) -> dict[str, Any]:
    user = {"id": x_user_id(item.author), "name": item.author.title(), "username": item.author}
    if item.author_location:
        user["location"] = item.author_location
    return user


def _place(item: Item) -> dict[str, Any]:
    # A small bounding box around the point, as X reports for neighbourhood-sized places.
    west, south, east, north = item.lon - 0.01, item.lat - 0.01, item.lon + 0.01, item.lat + 0.01
    return {
        "id": f"p{item.seq:015x}", "full_name": "Sandbox Place, Testshire", "country_code": "GB",
        "geo": {"type": "Feature", "bbox": [west, south, east, north], "properties": {}},
    }


def tweet_json(item: Item) -> dict[str, Any]:
    if item.malformed:
        # A broken shape on purpose: no text, numeric id, author as an object.
        return {"id": int(item.external_id), "author_id": {"name": item.author}, "body": item.text}
    tweet: dict[str, Any] = {
        "id": item.external_id, "text": item.text, "edit_history_tweet_ids": [item.external_id],
        "author_id": x_user_id(item.author), "created_at": iso(item.created_at),
        "conversation_id": item.extra.get("root") or item.external_id, "in_reply_to_user_id": X_SERVICE_USER_ID,
    }
    if item.extra.get("reply_to"):  # a reply in a thread
        tweet["referenced_tweets"] = [{"type": "replied_to", "id": item.extra["reply_to"]}]
    if item.lat is not None and item.lon is not None:
        geo: dict[str, Any] = {"place_id": _place(item)["id"]}
        if not item.place_only:
            geo["coordinates"] = {"type": "Point", "coordinates": [item.lon, item.lat]}
        tweet["geo"] = geo
    return tweet


def dm_event_json(item: Item) -> dict[str, Any]:
    sender = x_user_id(item.author)
    if item.malformed:  # broken on purpose: no text, sender id as a number
        return {"id": item.external_id, "event_type": "MessageCreate", "sender_id": int(sender),
                "message": item.text, "author": item.author}
    return {
        "id": item.external_id, "event_type": "MessageCreate", "text": item.text,
        "sender_id": sender, "created_at": iso(item.created_at),
        "dm_conversation_id": f"{min(sender, X_SERVICE_USER_ID)}-{max(sender, X_SERVICE_USER_ID)}",
    }


def _page(items: list[Item], params: dict[str, str], since_id: int | None) -> tuple[list[Item], str | None]:
    """Newest first; `pagination_token` continues below the previous page's oldest id."""
    newest_first = sorted(items, key=lambda i: int(i.external_id), reverse=True)
    if since_id is not None:
        newest_first = [i for i in newest_first if int(i.external_id) > since_id]
    token = params.get("pagination_token")
    if token:
        below = int(token.removeprefix("next_"))
        newest_first = [i for i in newest_first if int(i.external_id) < below]
    limit = max(1, min(100, int(params.get("max_results", "10"))))
    page, rest = newest_first[:limit], newest_first[limit:]
    return page, (f"next_{page[-1].external_id}" if rest else None)


def _problem(status: int, title: str, detail: str, kind: str) -> JSONResponse:
    body = {"title": title, "detail": detail, "type": PROBLEM_BASE + kind, "status": status}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def require_auth(request: Request) -> None:
    """Bearer (app-only) or OAuth 1.0a (user context) — signatures are not checked."""
    header = request.headers.get("authorization", "")
    if not (header.startswith("Bearer ") or header.startswith("OAuth ")):
        raise HTTPException(status_code=401, detail="Unauthorized")


class _Authors:
    """X user id → author of the stored X posts, brought up to date with the posts appended
    since it last looked. The DM endpoint answers a reporter by id: scanning every stored post
    for each DM cost the burst benchmark half a core while receipts went out."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.seen = 0  # stored posts indexed so far (posts are only ever appended)
        self.by_id: dict[str, str] = {}

    def find(self, user_id: str) -> str | None:
        with self.state.lock:
            items = self.state.items
            for item in items[self.seen:]:
                if item.platform == "x":
                    self.by_id[x_user_id(item.author)] = item.author
            self.seen = len(items)
            return self.by_id.get(user_id)


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_auth)])
    config = lambda: state.faults["x"]  # noqa: E731 - read at request time, faults change
    authors = _Authors(state)

    @router.get("/2/users/me")
    async def users_me() -> JSONResponse:
        return JSONResponse({"data": {"id": X_SERVICE_USER_ID, "name": "Flare", "username": state.handle}})

    @router.get("/2/users/{user_id}/mentions")
    async def mentions(user_id: str, request: Request) -> Response:
        if user_id != X_SERVICE_USER_ID:
            return _problem(404, "Not Found Error", "no such user", "resource-not-found")
        params = dict(request.query_params)
        since = int(params["since_id"]) if params.get("since_id") else None
        page, next_token = _page(state.items_for("x", is_dm=False), params, since)
        return _listing(state, page, next_token, tweet_json, with_places=True)

    @router.get("/2/dm_events")
    async def dm_events(request: Request) -> Response:
        page, next_token = _page(state.items_for("x", is_dm=True), dict(request.query_params), None)
        return _listing(state, page, next_token, dm_event_json, with_places=False)

    @router.get("/2/users/{user_id}/tweets")
    async def user_tweets(user_id: str, request: Request) -> Response:
        """The account's own tweets, newest first (in the sandbox only Flare's replies exist)."""
        params = dict(request.query_params)
        since = _epoch(params.get("start_time", ""))
        sent = [s for s in state.sent_by_us("x", "reply") if user_id == X_SERVICE_USER_ID and s.at >= since]
        limit = max(5, min(100, int(params.get("max_results", "10"))))
        data = [{"id": s.message_id, "text": s.text, "author_id": X_SERVICE_USER_ID, "created_at": iso(s.at),
                 "edit_history_tweet_ids": [s.message_id],
                 "referenced_tweets": [{"type": "replied_to", "id": s.in_reply_to}] if s.in_reply_to else []}
                for s in reversed(sent)][:limit]
        return JSONResponse({"data": data, "meta": {"result_count": len(data)}} if data else
                            {"meta": {"result_count": 0}})

    @router.get("/2/dm_conversations/with/{participant_id}/dm_events")
    async def conversation_events(participant_id: str, request: Request) -> Response:
        """Both sides of the one-to-one conversation with a participant, newest first."""
        events = [(i.created_at, dm_event_json(i)) for i in state.items_for("x", is_dm=True)
                  if x_user_id(i.author) == participant_id and not i.malformed]
        conversation = f"{min(participant_id, X_SERVICE_USER_ID)}-{max(participant_id, X_SERVICE_USER_ID)}"
        events += [(s.at, {"id": s.message_id, "event_type": "MessageCreate", "text": s.text,
                           "sender_id": X_SERVICE_USER_ID, "created_at": iso(s.at), "dm_conversation_id": conversation})
                   for s in state.sent_by_us("x", "dm") if s.recipient == participant_id]
        limit = max(1, min(100, int(request.query_params.get("max_results", "100"))))
        data = [e for _, e in sorted(events, key=lambda pair: pair[0], reverse=True)][:limit]
        return JSONResponse({"data": data, "meta": {"result_count": len(data)}} if data else
                            {"meta": {"result_count": 0}})

    @router.post("/2/tweets")
    async def create_tweet(request: Request) -> Response:
        body = await request.json()
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _problem(400, "Invalid Request", "text is required", "invalid-request")
        parent = str((body.get("reply") or {}).get("in_reply_to_tweet_id", ""))
        if parent and state.find("x", parent) is None:
            return _problem(400, "Invalid Request", "in_reply_to_tweet_id not found", "invalid-request")
        sent = state.record_sent("x", "reply", text, in_reply_to=parent)
        data = {"id": sent.message_id, "text": text, "edit_history_tweet_ids": [sent.message_id]}
        return JSONResponse({"data": data}, status_code=201)

    @router.post("/2/dm_conversations/with/{participant_id}/messages")
    async def send_dm(participant_id: str, request: Request) -> Response:
        body = await request.json()
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _problem(400, "Invalid Request", "text is required", "invalid-request")
        author = authors.find(participant_id)
        if author is None:
            return _problem(400, "Invalid Request", "participant not found", "invalid-request")
        if not state.dm_allowed("x", author):
            return _problem(403, "Forbidden", "You cannot send messages to this user.", "unsupported-authentication")
        sent = state.record_sent("x", "dm", text, recipient=participant_id)
        conversation = f"{min(participant_id, X_SERVICE_USER_ID)}-{max(participant_id, X_SERVICE_USER_ID)}"
        return JSONResponse({"data": {"dm_conversation_id": conversation, "dm_event_id": sent.message_id}},
                            status_code=201)

    def _listing(state: SandboxState, page: list[Item], next_token: str | None, render, with_places: bool) -> Response:
        if wants_garbage(config()):
            return Response(b'{"data": [{"id": "1", "te', media_type="application/json")
        rendered = shape_listing(config(), [render(i) for i in page])
        if not rendered:
            return JSONResponse({"meta": {"result_count": 0}})
        users = {x_user_id(i.author): _user(i) for i in page}
        includes: dict[str, Any] = {"users": list(users.values())}
        places = [_place(i) for i in page if with_places and i.lat is not None and i.lon is not None]
        if places:
            includes["places"] = places
        ids = [int(i.external_id) for i in page]
        meta: dict[str, Any] = {"result_count": len(rendered), "newest_id": str(max(ids)), "oldest_id": str(min(ids))}
        if next_token:
            meta["next_token"] = next_token
        return Response(json.dumps({"data": rendered, "includes": includes, "meta": meta}),
                        media_type="application/json")

    return router
