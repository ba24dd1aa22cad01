"""Reddit's OAuth API as the sandbox speaks it: enough for praw/prawcore (script app auth)."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from connectors.sandbox.faults import shape_listing, wants_garbage
from connectors.sandbox.state import REDDIT_SERVICE_USER, Item, SandboxState, base36

TOKEN_SECONDS = 86400


def thing_json(item: Item, service_user: str) -> dict[str, Any]:
    fullname = item.external_id
    kind, short_id = fullname.split("_", 1)
    if item.malformed:
        # A broken shape on purpose: body under another key, created_utc as text, author as a list.
        return {"kind": kind, "data": {"id": short_id, "name": fullname, "author": [item.author],
                                       "created_utc": "yesterday", "bodytext": item.text}}
    data: dict[str, Any] = {
        "id": short_id, "name": fullname, "author": item.author, "created_utc": float(item.created_at),
        "created": float(item.created_at), "new": not item.read, "dest": service_user,
    }
    subreddit = item.extra.get("subreddit") or "emergencytest"
    if kind == "t3":
        title, _, rest = item.text.partition("\n")
        data.update({"title": title[:300], "selftext": (title[300:] + _ + rest).strip(), "subreddit": subreddit,
                     "permalink": f"/r/{subreddit}/comments/{short_id}/", "is_self": True})
    elif kind == "t1":
        data.update({"body": item.text, "was_comment": True, "subreddit": subreddit,
                     "subject": "comment reply" if item.extra.get("reply_to") else "username mention",
                     "type": "comment_reply" if item.extra.get("reply_to") else "username_mention",
                     "parent_id": item.extra.get("reply_to") or "t3_" + base36(0), "link_id": "t3_" + base36(0),
                     "context": f"/r/{subreddit}/comments/{base36(0)}/_/{short_id}/?context=3"})
    else:
        data.update({"body": item.text, "was_comment": False, "subject": "help",
                     "first_message_name": None, "parent_id": None, "replies": ""})
    return {"kind": kind, "data": data}


def _listing(children: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "Listing", "data": {"after": None, "before": None, "dist": len(children),
                                        "modhash": None, "children": children}}


def _window(items: list[Item], params: dict[str, str]) -> list[Item]:
    """Newest first; `before` = newer than the anchor (the ones nearest it), `after` = older."""
    newest_first = sorted(items, key=lambda i: i.seq, reverse=True)
    limit = max(1, min(100, int(params.get("limit", "25"))))
    seqs = {i.external_id: i.seq for i in items}
    if params.get("before"):
        anchor = seqs.get(params["before"])
        if anchor is None:  # a deleted or unknown anchor: Reddit answers with nothing
            return []
        newer = [i for i in newest_first if i.seq > anchor]
        return newer[-limit:]
    if params.get("after"):
        anchor = seqs.get(params["after"])
        if anchor is None:
            return []
        newest_first = [i for i in newest_first if i.seq < anchor]
    return newest_first[:limit]


def _form(raw: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}


def _api_errors(errors: list[list[str]]) -> JSONResponse:
    return JSONResponse({"json": {"errors": errors}})


def require_bearer(request: Request) -> None:
    """Every call but the token endpoint carries the OAuth bearer token praw obtained."""
    if request.url.path != "/api/v1/access_token" and \
            not request.headers.get("authorization", "").lower().startswith("bearer "):
        raise HTTPException(status_code=401, detail="Unauthorized")


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_bearer)])
    config = lambda: state.faults["reddit"]  # noqa: E731 - faults change at runtime

    def inbox(kind: str) -> list[Item]:
        items = [i for i in state.items_for("reddit") if not i.extra.get("subreddit")]
        if kind == "mentions":
            return [i for i in items if i.external_id.startswith("t1_")]
        return [i for i in items if not i.read]

    def listing_response(items: list[Item], params: dict[str, str]) -> Response:
        if wants_garbage(config()):
            return Response(b'{"kind": "Listing", "data": {"children": [{"kind": "t1", "da',
                            media_type="application/json")
        page = _window(items, params)
        children = shape_listing(config(), [thing_json(i, state.handle) for i in page])
        return Response(json.dumps(_listing(children)), media_type="application/json")

    @router.post("/api/v1/access_token")
    async def access_token(request: Request) -> JSONResponse:
        form = _form(await request.body())
        if not request.headers.get("authorization", "").startswith("Basic "):
            return JSONResponse({"error": 401, "message": "Unauthorized"}, status_code=401)
        if form.get("grant_type") not in ("password", "client_credentials", "refresh_token"):
            return JSONResponse({"error": "unsupported_grant_type"})
        return JSONResponse({"access_token": f"sandbox-{state.next_seq()}", "token_type": "bearer",
                             "expires_in": TOKEN_SECONDS, "scope": "*"})

    @router.get("/api/v1/me")
    async def me() -> JSONResponse:
        return JSONResponse({"name": state.handle or REDDIT_SERVICE_USER, "id": "flare1", "created_utc": 1.6e9})

    @router.get("/message/mentions")
    async def mentions(request: Request) -> Response:
        return listing_response(inbox("mentions"), dict(request.query_params))

    @router.get("/message/unread")
    async def unread(request: Request) -> Response:
        params = dict(request.query_params)
        response = listing_response(inbox("unread"), params)
        if params.get("mark") in ("true", "True", "1"):
            state.mark_read("reddit", {i.external_id for i in _window(inbox("unread"), params)})
        return response

    @router.get("/r/{subreddit}/new")
    async def subreddit_new(subreddit: str, request: Request) -> Response:
        items = [i for i in state.items_for("reddit") if i.extra.get("subreddit") == subreddit
                 and i.external_id.startswith("t3_")]
        return listing_response(items, dict(request.query_params))

    @router.get("/r/{subreddit}/comments")
    async def subreddit_comments(subreddit: str, request: Request) -> Response:
        items = [i for i in state.items_for("reddit") if i.extra.get("subreddit") == subreddit
                 and i.external_id.startswith("t1_")]
        return listing_response(items, dict(request.query_params))

    def sent_thing(sent: Any, kind: str) -> dict[str, Any]:
        short_id = sent.message_id.split("_", 1)[1]
        data = {"id": short_id, "name": sent.message_id, "author": state.handle, "body": sent.text,
                "created_utc": float(sent.at), "created": float(sent.at), "parent_id": sent.in_reply_to or None}
        if kind == "t4":
            parent = state.find("reddit", sent.in_reply_to) if sent.in_reply_to else None
            data.update({"dest": sent.recipient or (parent.author if parent else ""), "was_comment": False})
        else:
            data.update({"link_id": "t3_" + base36(0), "subreddit": "emergencytest"})
        return {"kind": kind, "data": data}

    @router.get("/message/sent")
    async def sent_messages(request: Request) -> Response:
        limit = max(1, min(100, int(request.query_params.get("limit", "25"))))
        sent = state.sent_by_us("reddit", "dm")
        return Response(json.dumps(_listing([sent_thing(s, "t4") for s in reversed(sent)][:limit])),
                        media_type="application/json")

    @router.get("/user/{name}/comments")
    async def user_comments(name: str, request: Request) -> Response:
        limit = max(1, min(100, int(request.query_params.get("limit", "25"))))
        sent = state.sent_by_us("reddit", "reply") if name.lower() == state.handle.lower() else []
        return Response(json.dumps(_listing([sent_thing(s, "t1") for s in reversed(sent)][:limit])),
                        media_type="application/json")

    @router.post("/api/read_message")
    async def read_message(request: Request) -> JSONResponse:
        ids = {x for x in _form(await request.body()).get("id", "").split(",") if x}
        state.mark_read("reddit", ids)
        return JSONResponse({})

    @router.post("/api/comment")
    async def comment(request: Request) -> JSONResponse:
        form = _form(await request.body())
        parent, text = form.get("thing_id", ""), form.get("text", "")
        if not text:
            return _api_errors([["NO_TEXT", "we need something here", "text"]])
        if state.find("reddit", parent) is None:
            return _api_errors([["DELETED_COMMENT", "that comment has been deleted", "parent"]])
        kind = "dm" if parent.startswith("t4_") else "reply"
        sent = state.record_sent("reddit", kind, text, in_reply_to=parent)
        thing_kind, short_id = sent.message_id.split("_", 1)
        data = {"id": short_id, "name": sent.message_id, "author": state.handle, "body": text,
                "parent_id": parent, "created_utc": sent.at, "link_id": "t3_" + base36(0),
                "subreddit": "emergencytest"}
        return JSONResponse({"json": {"errors": [], "data": {"things": [{"kind": thing_kind, "data": data}]}}})

    @router.post("/api/compose")
    async def compose(request: Request) -> JSONResponse:
        form = _form(await request.body())
        to, text = form.get("to", ""), form.get("text", "")
        authors = {i.author for i in state.items_for("reddit")}
        if to not in authors:
            return _api_errors([["USER_DOESNT_EXIST", "that user doesn't exist", "to"]])
        if not state.dm_allowed("reddit", to):
            return _api_errors([["NOT_WHITELISTED_BY_USER_MESSAGE", "You can't send a message to that user.", "to"]])
        if not text:
            return _api_errors([["NO_TEXT", "we need something here", "text"]])
        state.record_sent("reddit", "dm", text, recipient=to)
        return JSONResponse({"json": {"errors": []}})

    return router
