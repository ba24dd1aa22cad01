"""Bluesky XRPC as the sandbox speaks it: enough for the atproto SDK's Client and chat proxy."""
from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from connectors.sandbox.faults import shape_listing, wants_garbage
from connectors.sandbox.state import BLUESKY_SERVICE_DID, Item, SandboxState, bluesky_did, hash_text, tid
from connectors.sandbox.x_api import iso

SESSION_SECONDS = 2 * 3600


def handle_for(author: str) -> str:
    return author if "." in author else f"{author}.bsky.social"


def fake_cid(text: str) -> str:
    """A CID-shaped string (base32, 'bafyrei' prefix); the sandbox never verifies content."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")


def _jwt(did: str, scope: str, seconds: int) -> str:
    """Unsigned-looking but decodable JWT: the client reads `exp`, it never verifies."""
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"scope": scope, "sub": did, "iat": now, "exp": now + seconds, "aud": "did:web:sandbox.local"}
    return f"{part({'alg': 'ES256K', 'typ': 'at+jwt'})}.{part(claims)}.c2FuZGJveA"


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


def _post_record(item: Item) -> dict[str, Any]:
    record = {"$type": "app.bsky.feed.post", "text": item.text, "createdAt": iso(item.created_at), "langs": ["en"]}
    if item.extra.get("reply_to"):  # a reply in a thread: strong refs to its parent and root
        record["reply"] = {"root": {"uri": item.extra["root"], "cid": fake_cid(item.extra["root"])},
                           "parent": {"uri": item.extra["reply_to"], "cid": fake_cid(item.extra["reply_to"])}}
    return record


def notification_json(item: Item) -> dict[str, Any]:
    author = {"did": bluesky_did(item.author), "handle": handle_for(item.author), "displayName": item.author.title()}
    if item.malformed:
        # A broken shape on purpose: no cid, record text is a number, reason missing.
        return {"uri": item.external_id, "author": author, "record": {"text": 12345, "body": item.text}, "indexedAt": iso(item.created_at)}
    return {
        "uri": item.external_id, "cid": fake_cid(item.external_id), "author": author,
        "reason": "reply" if item.extra.get("reply_to") else "mention", "record": _post_record(item), "isRead": item.read,
        "indexedAt": iso(item.created_at), "labels": [],
    }


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/xrpc")
    service_handle = handle_for(state.handle)

    def session_body() -> dict[str, Any]:
        return {
            "did": BLUESKY_SERVICE_DID, "handle": service_handle, "active": True,
            "accessJwt": _jwt(BLUESKY_SERVICE_DID, "com.atproto.appPass", SESSION_SECONDS),
            "refreshJwt": _jwt(BLUESKY_SERVICE_DID, "com.atproto.refresh", 30 * 86400),
        }

    def authorised(request: Request) -> bool:
        return request.headers.get("authorization", "").startswith("Bearer ")

    @router.post("/com.atproto.server.createSession")
    async def create_session(request: Request) -> JSONResponse:
        body = await request.json()
        if not body.get("identifier") or not body.get("password"):
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        return JSONResponse(session_body())

    @router.post("/com.atproto.server.refreshSession")
    async def refresh_session(request: Request) -> JSONResponse:
        if not authorised(request):
            return _error(401, "AuthenticationRequired", "refresh token required")
        return JSONResponse(session_body())

    @router.get("/app.bsky.actor.getProfile")
    async def get_profile(actor: str) -> JSONResponse:
        if actor in (service_handle, BLUESKY_SERVICE_DID):
            return JSONResponse({"did": BLUESKY_SERVICE_DID, "handle": service_handle, "displayName": "Flare"})
        for item in state.items_for("bluesky"):
            if actor in (bluesky_did(item.author), handle_for(item.author)):
                return JSONResponse({"did": bluesky_did(item.author), "handle": handle_for(item.author),
                                     "displayName": item.author.title()})
        return _error(400, "InvalidRequest", "Profile not found")

    @router.get("/app.bsky.notification.listNotifications")
    async def list_notifications(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "AuthenticationRequired", "Authentication Required")
        if wants_garbage(state.faults["bluesky"]):
            return Response(b'{"notifications": [{"uri": "at://', media_type="application/json")
        limit = max(1, min(100, int(request.query_params.get("limit", "50"))))
        newest_first = sorted(state.items_for("bluesky", is_dm=False), key=lambda i: i.seq, reverse=True)
        cursor = request.query_params.get("cursor")
        if cursor:
            newest_first = [i for i in newest_first if i.seq < int(cursor)]
        page, rest = newest_first[:limit], newest_first[limit:]
        body: dict[str, Any] = {"notifications": shape_listing(state.faults["bluesky"],
                                                              [notification_json(i) for i in page])}
        if rest:
            body["cursor"] = str(page[-1].seq)
        return JSONResponse(body)

    @router.post("/app.bsky.notification.updateSeen")
    async def update_seen(request: Request) -> Response:
        body = await request.json()
        if not isinstance(body.get("seenAt"), str):
            return _error(400, "InvalidRequest", "seenAt is required")
        return Response(status_code=200)

    @router.post("/com.atproto.repo.createRecord")
    async def create_record(request: Request) -> JSONResponse:
        body = await request.json()
        record = body.get("record") or {}
        if body.get("collection") != "app.bsky.feed.post" or not isinstance(record.get("text"), str):
            return _error(400, "InvalidRequest", "only app.bsky.feed.post records are supported")
        parent = ((record.get("reply") or {}).get("parent") or {}).get("uri", "")
        if record.get("reply") and not (record["reply"].get("root") or {}).get("cid"):
            return _error(400, "InvalidRequest", "reply.root must be a strong ref")
        sent = state.record_sent("bluesky", "reply", record["text"], in_reply_to=parent)
        return JSONResponse({"uri": sent.message_id, "cid": fake_cid(sent.message_id),
                             "commit": {"cid": fake_cid("commit" + sent.message_id), "rev": tid(state.next_seq())},
                             "validationStatus": "valid"})

    @router.get("/app.bsky.feed.getAuthorFeed")
    async def get_author_feed(request: Request) -> JSONResponse:
        """An account's posts and replies, newest first (in the sandbox only Flare's are kept)."""
        actor = request.query_params.get("actor", "")
        limit = max(1, min(100, int(request.query_params.get("limit", "50"))))
        sent = state.sent_by_us("bluesky", "reply") if actor in (service_handle, BLUESKY_SERVICE_DID) else []
        feed = []
        for s in reversed(sent[-limit:]):
            record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": s.text, "createdAt": iso(s.at)}
            if s.in_reply_to:
                ref = {"uri": s.in_reply_to, "cid": fake_cid(s.in_reply_to)}
                record["reply"] = {"parent": ref, "root": ref}
            feed.append({"post": {"uri": s.message_id, "cid": fake_cid(s.message_id), "record": record,
                                  "author": {"did": BLUESKY_SERVICE_DID, "handle": service_handle},
                                  "indexedAt": iso(s.at)}})
        return JSONResponse({"feed": feed})

    _chat_routes(router, state)
    return router


def _chat_routes(router: APIRouter, state: SandboxState) -> None:
    def convo_id(did: str) -> str:
        return f"convo{hash_text(did) % 10**12:012d}"

    def member(did: str, handle: str) -> dict[str, Any]:
        return {"did": did, "handle": handle}

    def convo(author: str) -> dict[str, Any]:
        did = bluesky_did(author)
        return {"id": convo_id(did), "rev": f"{len(state.items):012d}", "unreadCount": 0, "muted": False,
                "members": [member(BLUESKY_SERVICE_DID, handle_for(state.handle)), member(did, handle_for(author))]}

    def message_view(item: Item) -> dict[str, Any]:
        return {"$type": "chat.bsky.convo.defs#messageView", "id": item.external_id, "rev": f"{item.seq:012d}",
                "text": item.text, "sender": {"did": bluesky_did(item.author)}, "sentAt": iso(item.created_at)}

    def dm_authors() -> dict[str, str]:
        return {bluesky_did(i.author): i.author for i in state.items_for("bluesky")}

    @router.get("/chat.bsky.convo.getConvoForMembers")
    async def get_convo_for_members(request: Request) -> JSONResponse:
        members = [m for m in request.query_params.getlist("members") if m != BLUESKY_SERVICE_DID]
        author = dm_authors().get(members[0]) if members else None
        if author is None:
            return _error(400, "InvalidRequest", "Actor not found")
        if not state.dm_allowed("bluesky", author):
            return _error(400, "InvalidRequest", "recipient has disabled incoming messages")
        return JSONResponse({"convo": convo(author)})

    @router.post("/chat.bsky.convo.sendMessage")
    async def send_message(request: Request) -> JSONResponse:
        body = await request.json()
        text = (body.get("message") or {}).get("text")
        by_convo = {convo_id(did): author for did, author in dm_authors().items()}
        author = by_convo.get(body.get("convoId", ""))
        if author is None or not isinstance(text, str):
            return _error(400, "InvalidRequest", "unknown convo or empty message")
        sent = state.record_sent("bluesky", "dm", text, recipient=bluesky_did(author))
        seq = int(sent.message_id.removeprefix("msg"))
        return JSONResponse({"id": sent.message_id, "rev": f"{seq:012d}", "text": text,
                             "sender": {"did": BLUESKY_SERVICE_DID}, "sentAt": iso(sent.at)})

    @router.get("/chat.bsky.convo.getMessages")
    async def get_messages(request: Request) -> JSONResponse:
        """Both sides of one conversation, newest first."""
        wanted = request.query_params.get("convoId", "")
        limit = max(1, min(100, int(request.query_params.get("limit", "50"))))
        messages = [(i.seq, message_view(i)) for i in state.items_for("bluesky", is_dm=True)
                    if convo_id(bluesky_did(i.author)) == wanted and not i.malformed]
        for s in state.sent_by_us("bluesky", "dm"):
            if convo_id(s.recipient) == wanted:
                seq = int(s.message_id.removeprefix("msg"))
                messages.append((seq, {"$type": "chat.bsky.convo.defs#messageView", "id": s.message_id,
                                       "rev": f"{seq:012d}", "text": s.text, "sender": {"did": BLUESKY_SERVICE_DID},
                                       "sentAt": iso(s.at)}))
        return JSONResponse({"messages": [m for _, m in sorted(messages, key=lambda p: p[0], reverse=True)][:limit]})

    @router.get("/chat.bsky.convo.getLog")
    async def get_log(request: Request) -> Response:
        if wants_garbage(state.faults["bluesky"]):
            return Response(b'{"logs": [{"$type": "chat.bsky', media_type="application/json")
        after = request.query_params.get("cursor") or ""
        items = [i for i in state.items_for("bluesky", is_dm=True) if f"{i.seq:012d}" > after]
        page = sorted(items, key=lambda i: i.seq)[:100]
        logs = []
        for item in page:
            if item.malformed:
                logs.append({"$type": "chat.bsky.convo.defs#logCreateMessage", "rev": f"{item.seq:012d}",
                             "convoId": convo_id(bluesky_did(item.author)), "message": {"id": item.external_id, "body": item.text}})
                continue
            logs.append({"$type": "chat.bsky.convo.defs#logCreateMessage", "rev": f"{item.seq:012d}",
                         "convoId": convo_id(bluesky_did(item.author)), "message": message_view(item)})
        logs = shape_listing(state.faults["bluesky"], logs)
        cursor = f"{page[-1].seq:012d}" if page else after
        body: dict[str, Any] = {"logs": logs}
        if cursor:
            body["cursor"] = cursor
        return JSONResponse(body)

    @router.get("/chat.bsky.convo.listConvos")
    async def list_convos() -> JSONResponse:
        authors = sorted({i.author for i in state.items_for("bluesky", is_dm=True)})
        return JSONResponse({"convos": [convo(a) for a in authors]})
