"""Bluesky through the atproto SDK: mentions/replies and chat DMs in, replies and DMs out.

Notifications only page towards older items, so the cursor keeps an `indexedAt` watermark
and a bounded list of recently seen URIs: items indexed a little late (or delivered out of
order) are still caught, and nothing seen is taken twice.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
# The client half of the SDK only: `atproto` also loads its firehose, jetstream and identity
# halves, 0.3 s more CPU before a restarted process polls Bluesky.
from atproto_client import Client, SessionEvent, models
from atproto_client import exceptions as atp
from atproto_client.request import Request, Response

from config.settings import BlueskySettings
from connectors.common import (
    POLL_CONNECT_TIMEOUT_S, POLL_READ_TIMEOUT_S, RateLimitGate, RateLimited, SentItem, SentLedger, clean_str,
    failure, hedged, malformed_post, match_sent,
    outcome_unknown, parse_time, to_json_text, retry_after_reset,
)
from models.domain import DeliveryReceipt, OutboundRequest, RawPost
from models.enums import MessageKind

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 20.0  # the replier's account: a send may take a while
# The sources' account only reads (safe to repeat): a hung poll is abandoned within seconds.
POLL_TIMEOUT = httpx.Timeout(POLL_READ_TIMEOUT_S, connect=POLL_CONNECT_TIMEOUT_S)
MAX_PAGES = 20
PAGE_LIMIT = 100
SEEN_URIS_KEPT = 1000
# How far behind the watermark a late-indexed notification is still looked for, and how often
# that whole window is read again. Between those deep reads a poll stops at the first page that
# reaches a notification already read: during a burst the window holds thousands, and reading
# all of them on every poll (20 pages) kept each new mention waiting seconds behind old ones.
WATERMARK_SLACK = timedelta(minutes=10)
DEEP_READ_SECONDS = 30.0
POST_REASONS = ("mention", "reply", "quote")
# A DM is not held back longer than this for its sender's handle (looked up side by side).
HANDLE_LOOKUP_BUDGET_S = 1.0
# Requests made beside the polls (senders' handles, updateSeen), never in their way.
_side_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bluesky-side")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HedgedRequest(Request):
    """The SDK's HTTP layer, sending a read again when its answer stalls (common.hedged)."""

    def get(self, *args: Any, **kwargs: Any) -> Response:
        return hedged(lambda: Request.get(self, *args, **kwargs))


class BlueskyAccount:
    """One logged-in account, shared by the sources and the replier; logs in lazily."""

    def __init__(self, settings: BlueskySettings, session_file: Path | None = None,
                 timeout: float | httpx.Timeout = REQUEST_TIMEOUT) -> None:
        self.settings = settings
        self.session_file = session_file
        self.timeout = timeout
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._chat: Client | None = None
        self.last_response: httpx.Response | None = None

    def _remember(self, response: httpx.Response) -> None:
        self.last_response = response

    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = self._login()
            return self._client

    def chat(self) -> Client:
        client = self.client()
        with self._lock:
            if self._chat is None:
                self._chat = client.with_bsky_chat_proxy()
            return self._chat

    def did(self) -> str:
        return self.client().me.did

    def reset(self) -> None:
        """Forget the session (after a 401) so the next call logs in again."""
        with self._lock:
            self._client, self._chat = None, None

    def _login(self) -> Client:
        request = HedgedRequest(timeout=self.timeout, event_hooks={"response": [self._remember]})
        client = Client(base_url=self.settings.base_url or None, request=request)
        client.on_session_change(self._save_session)
        saved = self._load_session()
        if saved:
            try:
                client.login(session_string=saved)
                return client
            except (atp.UnauthorizedError, atp.BadRequestError, ValueError) as exc:
                log.info("bluesky: stored session rejected (%s); logging in with the app password", exc)
        client.login(self.settings.handle, self.settings.app_password.get_secret_value())
        return client

    def _load_session(self) -> str:
        if self.session_file is None or not self.session_file.exists():
            return ""
        return self.session_file.read_text(encoding="utf-8").strip()

    def _save_session(self, event: SessionEvent, session: Any) -> None:
        if self.session_file is None or event not in (SessionEvent.CREATE, SessionEvent.REFRESH):
            return
        self.session_file.parent.mkdir(parents=True, exist_ok=True)
        # It is a credential: created owner-only, never briefly world-readable.
        fd = os.open(self.session_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(session.encode())


def _reset_of(exc: atp.RequestErrorBase) -> float:
    headers = exc.response.headers if exc.response is not None else {}
    reset = str(headers.get("ratelimit-reset", ""))
    return float(reset) if reset.isdigit() else time.time() + 60.0


def _strong_ref(value: Any) -> tuple[str, str]:
    if isinstance(value, dict) and isinstance(value.get("uri"), str) and isinstance(value.get("cid"), str):
        return value["uri"], value["cid"]
    return "", ""


def notification_to_raw(item: Any) -> RawPost | None:
    """One notification → RawPost; None for reasons that are not posts (likes, follows)."""
    raw_text = to_json_text(item)
    if not isinstance(item, dict):
        return malformed_post("bluesky", raw_text, "notification is not an object")
    uri, cid = item.get("uri"), item.get("cid")
    reason = item.get("reason")
    if reason is not None and reason not in POST_REASONS:
        return None
    if not (isinstance(uri, str) and uri.startswith("at://")):
        return malformed_post("bluesky", raw_text, "notification uri missing or not an at-uri")
    author = item.get("author") if isinstance(item.get("author"), dict) else {}
    record = item.get("record") if isinstance(item.get("record"), dict) else {}
    text = record.get("text")
    if not isinstance(cid, str) or not isinstance(text, str) or not isinstance(author.get("did"), str) \
            or reason is None:
        return malformed_post("bluesky", raw_text, "notification lacks cid, reason, author did or record text", uri)
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    root_uri, root_cid = _strong_ref(reply.get("root"))
    parent_uri, _ = _strong_ref(reply.get("parent"))
    return RawPost(
        platform="bluesky", external_id=uri, text=text, raw_payload=raw_text,
        author_id=author["did"], author_handle=clean_str(author.get("handle")),
        author_name=clean_str(author.get("displayName")),
        posted_at=parse_time(record.get("createdAt")) or parse_time(item.get("indexedAt")),
        reply_to_external_id=parent_uri, conversation_id=root_uri or uri,
        reply_ref={"uri": uri, "cid": cid, "root_uri": root_uri or uri, "root_cid": root_cid or cid},
    )


def chat_log_to_raw(entry: Any, own_did: str) -> RawPost | None:
    """One chat log entry → RawPost; None for entries that are not messages from others."""
    raw_text = to_json_text(entry)
    if not isinstance(entry, dict):
        return malformed_post("bluesky", raw_text, "chat log entry is not an object", is_dm=True)
    if not str(entry.get("$type", "")).endswith("#logCreateMessage"):
        return None
    message = entry.get("message") if isinstance(entry.get("message"), dict) else {}
    if str(message.get("$type", "")).endswith("#deletedMessageView"):
        return None
    message_id, text = message.get("id"), message.get("text")
    sender = (message.get("sender") or {}).get("did") if isinstance(message.get("sender"), dict) else None
    if sender == own_did:
        return None  # our own outgoing messages are in the same log
    hint = f"dm:{message_id}" if isinstance(message_id, str) and message_id else ""
    if not hint or not isinstance(text, str) or not isinstance(sender, str):
        return malformed_post("bluesky", raw_text, "chat message lacks id, text or sender", hint, is_dm=True)
    convo_id = clean_str(entry.get("convoId"))
    return RawPost(
        platform="bluesky", external_id=hint, text=text, raw_payload=raw_text, is_dm=True,
        author_id=sender, posted_at=parse_time(message.get("sentAt")), conversation_id=convo_id,
        reply_ref={"convo_id": convo_id, "sender_did": sender},
    )


class _BlueskySource:
    platform = "bluesky"

    def __init__(self, account: BlueskyAccount, name: str) -> None:
        self.account = account
        self.name = name
        self.poll_seconds = account.settings.poll_seconds
        self.gate = RateLimitGate()

    @property
    def rate_limited_until(self) -> float:
        return self.gate.until

    def _logged_in(self) -> tuple[Client, Client, str]:
        """The account's client, chat client and did, logging in if needed. A 429 on the login (or
        on its profile look-up) closes this source's gate like one on a poll: the next try waits
        for the platform's reset instead of asking again every half second inside the window."""
        try:
            return self.account.client(), self.account.chat(), self.account.did()
        except atp.RateLimitExceededError as exc:
            self.gate.close_until(_reset_of(exc))
            raise RateLimited(self.gate.until, "bluesky") from exc

    def _query(self, client: Client, nsid: str, params: Any) -> dict[str, Any] | RawPost:
        """Raw XRPC query: we parse items one by one so one odd item cannot sink the page."""
        try:
            response = client.invoke_query(nsid, params=params)
        except atp.RateLimitExceededError as exc:
            self.gate.close_until(_reset_of(exc))
            raise RateLimited(self.gate.until, "bluesky") from exc
        except atp.UnauthorizedError:
            self.account.reset()
            raise
        except ValueError as exc:  # body was not JSON
            last = self.account.last_response
            body = last.content if last is not None else b""
            return malformed_post("bluesky", body, f"{nsid} response is not JSON: {exc}")
        if not isinstance(response.content, dict):
            return malformed_post("bluesky", response.content, f"{nsid} response is not a JSON object")
        return response.content


class BlueskyNotificationsSource(_BlueskySource):
    def __init__(self, account: BlueskyAccount) -> None:
        super().__init__(account, "bluesky:notifications")
        self._seen_at: str = ""
        self._seen_lock = threading.Lock()
        self._seen_to_mark = ""  # the newest time read and not yet sent to updateSeen
        self._marking = False
        self._deep_read_due = 0.0  # monotonic time of the next read of the whole slack window

    def fetch(self, cursor: dict[str, Any]) -> tuple[list[RawPost], dict[str, Any]]:
        """New notifications, oldest first. Newest first the platform lists them; a poll reads
        pages until one reaches a notification it has already read (the rest are older), and
        every DEEP_READ_SECONDS it reads the whole WATERMARK_SLACK window, for a notification
        indexed late below ones already read."""
        if self.gate.is_closed():
            return [], cursor
        client, _, _ = self._logged_in()
        deep = time.monotonic() >= self._deep_read_due
        watermark = parse_time(cursor.get("watermark"))
        floor = watermark - WATERMARK_SLACK if watermark else None
        seen = [u for u in cursor.get("seen", []) if isinstance(u, str)]
        seen_set = set(seen)
        read_before = frozenset(seen_set)  # by earlier polls (a page may repeat what this one read)
        found: list[tuple[str, RawPost]] = []
        page_cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = models.AppBskyNotificationListNotifications.Params(
                limit=PAGE_LIMIT, reasons=list(POST_REASONS), cursor=page_cursor)
            page = self._query(client, "app.bsky.notification.listNotifications", params)
            if isinstance(page, RawPost):
                return [p for _, p in found] + [page], cursor
            items = page.get("notifications") if isinstance(page.get("notifications"), list) else []
            reached_floor = reached_read = False
            for item in items:
                indexed = clean_str(item.get("indexedAt")) if isinstance(item, dict) else ""
                indexed_time = parse_time(indexed)
                if floor and indexed_time and indexed_time < floor:
                    reached_floor = True
                    continue
                if isinstance(item, dict) and item.get("uri") in read_before:
                    reached_read = True
                    continue
                post = notification_to_raw(item)
                if post is None or post.external_id in seen_set:
                    continue
                seen_set.add(post.external_id)
                found.append((indexed, post))
            page_cursor = clean_str(page.get("cursor")) or None
            if reached_floor or not page_cursor or not items or (reached_read and not deep):
                break
        if deep:
            self._deep_read_due = time.monotonic() + DEEP_READ_SECONDS
        found.sort(key=lambda pair: (parse_time(pair[0]) or _EPOCH, pair[1].external_id))
        posts = [p for _, p in found]
        newest = max((parse_time(i) for i, _ in found if parse_time(i)), default=None)
        new_watermark = max(filter(None, [watermark, newest]), default=None)
        self._seen_at = newest.isoformat().replace("+00:00", "Z") if newest else ""
        kept = (seen + [p.external_id for p in posts])[-SEEN_URIS_KEPT:]
        return posts, {"watermark": new_watermark.isoformat() if new_watermark else "", "seen": kept}

    def after_commit(self, posts: Sequence[RawPost]) -> None:
        """updateSeen is a secondary marker (the app's unread badge); our cursor is the real one.
        It is sent beside the polling, not in its way: a write that stalls (up to the read
        timeout) would otherwise hold the next poll, and someone's next mention, behind it. One
        is in flight at a time; what was read meanwhile is marked by the next, newest first."""
        if not posts or not self._seen_at:
            return
        with self._seen_lock:
            self._seen_to_mark = self._seen_at
            if self._marking:
                return
            self._marking = True
        _side_pool.submit(self._mark_seen)

    def _mark_seen(self) -> None:
        while True:
            with self._seen_lock:
                seen_at, self._seen_to_mark = self._seen_to_mark, ""
                if not seen_at:
                    self._marking = False
                    return
            try:
                self.account.client().app.bsky.notification.update_seen({"seen_at": seen_at})
            except Exception as exc:  # noqa: BLE001 - a missed badge update must never fail intake
                log.warning("bluesky: updateSeen failed: %s", exc)


class BlueskyDirectMessagesSource(_BlueskySource):
    def __init__(self, account: BlueskyAccount) -> None:
        super().__init__(account, "bluesky:dms")
        self._handles: dict[str, str] = {}
        self.more_to_read = False  # the last page read events: the next may hold more (read at once)

    def fetch(self, cursor: dict[str, Any]) -> tuple[list[RawPost], dict[str, Any]]:
        """One page of the chat log from the cursor, oldest first. A page that read events is
        returned (and so stored) at once, with `more_to_read` set: the runner reads the next page
        straight after storing it, and the page that finds nothing new ends the backlog. The
        check that the log has no more is then no longer a round trip (with its 429s, 5xx and
        stalls) between a DM and its storing."""
        self.more_to_read = False
        if self.gate.is_closed():
            return [], cursor
        _, chat, own_did = self._logged_in()
        log_cursor = clean_str(cursor.get("log_cursor")) or None
        params = models.ChatBskyConvoGetLog.Params(cursor=log_cursor)
        page = self._query(chat, "chat.bsky.convo.getLog", params)
        if isinstance(page, RawPost):
            page.is_dm = True
            return [page], cursor
        logs = page.get("logs") if isinstance(page.get("logs"), list) else []
        posts = [p for p in (chat_log_to_raw(e, own_did) for e in logs) if p is not None]
        next_cursor = clean_str(page.get("cursor")) or None
        self.more_to_read = bool(logs) and bool(next_cursor) and next_cursor != log_cursor
        log_cursor = next_cursor or log_cursor
        self._look_up_handles([p.author_id for p in posts if not p.malformed])
        for post in posts:
            if not post.malformed:
                post.author_handle = self._handles.get(post.author_id, "")
        return posts, ({"log_cursor": log_cursor} if log_cursor else cursor)

    def _look_up_handles(self, dids: list[str]) -> None:
        """Best effort: the handle makes the dashboard readable, the did is what we answer to. The
        senders not yet known are looked up at once, side by side, for at most
        HANDLE_LOOKUP_BUDGET_S: a lookup that stalls or fails never holds a DM back, and one that
        answers later names the sender's next DM. None is asked while the platform's rate limit
        is closed (the lookup would only meet the 429)."""
        todo = [did for did in dict.fromkeys(dids) if did and did not in self._handles]
        if not todo or self.gate.is_closed():
            return
        wait([_side_pool.submit(self._look_up_handle, did) for did in todo], timeout=HANDLE_LOOKUP_BUDGET_S)

    def _look_up_handle(self, did: str) -> None:
        try:
            self._handles[did] = self.account.client().get_profile(did).handle
        except Exception as exc:  # noqa: BLE001 - a missing handle must not block a DM
            log.info("bluesky: no profile for %s: %s", did, exc)

    def after_commit(self, posts: Sequence[RawPost]) -> None:
        """The chat log cursor is our only marker; nothing to tell the platform."""


class BlueskyReplier:
    platform = "bluesky"

    def __init__(self, account: BlueskyAccount) -> None:
        self.account = account
        self.ledger = SentLedger()

    def supports_dm(self, request: OutboundRequest) -> bool:
        return request.recipient_id.startswith("did:")

    def send(self, request: OutboundRequest) -> DeliveryReceipt:
        remembered = self.ledger.get(request.idempotency_key)
        if remembered is not None:
            return remembered
        try:
            if request.kind == MessageKind.dm.value:
                message_id = self._send_dm(request)
            else:
                message_id = self._send_reply(request)
        except _Refused as exc:
            return failure(str(exc), retryable=False)
        except _NotSent as exc:
            return failure(str(exc), retryable=True)
        except atp.RateLimitExceededError as exc:
            return failure("rate limited", retryable=True, retry_after=retry_after_reset(_reset_of(exc)))
        except atp.BadRequestError as exc:
            return failure(f"refused (DMs closed or invalid request): {exc}", retryable=False)
        except atp.UnauthorizedError as exc:
            self.account.reset()
            return failure(f"session rejected, will log in again: {exc}", retryable=True)
        except atp.RequestErrorBase as exc:
            return _classify_transport(exc)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return failure(f"could not connect: {exc}", retryable=True)
        except httpx.HTTPError as exc:
            return outcome_unknown(exc)
        return self.ledger.remember(request.idempotency_key, DeliveryReceipt(ok=True, platform_message_id=message_id))

    def _send_reply(self, request: OutboundRequest) -> str:
        ref = request.reply_ref or {}
        if not all(isinstance(ref.get(k), str) and ref.get(k) for k in ("uri", "cid", "root_uri", "root_cid")):
            raise _Refused("reply_ref lacks uri/cid/root_uri/root_cid captured at intake")
        reply_to = models.AppBskyFeedPost.ReplyRef(
            parent=models.ComAtprotoRepoStrongRef.Main(uri=ref["uri"], cid=ref["cid"]),
            root=models.ComAtprotoRepoStrongRef.Main(uri=ref["root_uri"], cid=ref["root_cid"]),
        )
        return self.account.client().send_post(text=request.text, reply_to=reply_to).uri

    def _send_dm(self, request: OutboundRequest) -> str:
        if not request.recipient_id.startswith("did:"):
            raise _Refused("DM recipient must be a did")
        try:
            convo_id = self._convo_id(request.recipient_id)
        except (atp.RateLimitExceededError, atp.BadRequestError, atp.UnauthorizedError):
            raise
        except (atp.RequestErrorBase, httpx.HTTPError) as exc:
            # Only the read-only lookup failed: the message itself was never sent.
            raise _NotSent(f"conversation lookup failed, nothing sent: {type(exc).__name__}: {exc}") from exc
        message = self.account.chat().chat.bsky.convo.send_message(models.ChatBskyConvoSendMessage.Data(
            convo_id=convo_id, message=models.ChatBskyConvoDefs.MessageInput(text=request.text)))
        return message.id

    def _convo_id(self, did: str) -> str:
        return self.account.chat().chat.bsky.convo.get_convo_for_members(
            models.ChatBskyConvoGetConvoForMembers.Params(members=[did])).convo.id

    def find_sent(self, request: OutboundRequest, since: datetime, exclude: frozenset[str]) -> DeliveryReceipt | None:
        """Our messages in the conversation with the recipient, or our recent posts replying to
        the post; the SDK's exceptions propagate (the platform could not be asked)."""
        own = self.account.did()
        items: list[SentItem] = []
        if request.kind == MessageKind.dm.value:
            params = models.ChatBskyConvoGetMessages.Params(convo_id=self._convo_id(request.recipient_id), limit=100)
            content = self.account.chat().invoke_query("chat.bsky.convo.getMessages", params=params).content
            for m in _dicts(content, "messages"):
                if (m.get("sender") or {}).get("did") == own and isinstance(m.get("id"), str):
                    items.append(SentItem(m["id"], clean_str(m.get("text")), parse_time(m.get("sentAt"))))
        else:
            parent = clean_str((request.reply_ref or {}).get("uri")) or request.in_reply_to_external_id
            params = models.AppBskyFeedGetAuthorFeed.Params(actor=own, filter="posts_with_replies", limit=100)
            content = self.account.client().invoke_query("app.bsky.feed.getAuthorFeed", params=params).content
            for entry in _dicts(content, "feed"):
                post = entry.get("post") if isinstance(entry.get("post"), dict) else {}
                record = post.get("record") if isinstance(post.get("record"), dict) else {}
                reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
                if parent and _strong_ref(reply.get("parent"))[0] == parent and isinstance(post.get("uri"), str):
                    items.append(SentItem(post["uri"], clean_str(record.get("text")), parse_time(record.get("createdAt"))))
        found = match_sent(items, request.text, since, exclude)
        return self.ledger.remember(request.idempotency_key, found) if found is not None else None


class _Refused(Exception):
    """A request we will not send as given; retrying the same request cannot help."""


class _NotSent(Exception):
    """A step before the send failed: nothing reached the platform, a retry is safe."""


def _dicts(content: Any, key: str) -> list[dict[str, Any]]:
    items = content.get(key) if isinstance(content, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _classify_transport(exc: atp.RequestErrorBase) -> DeliveryReceipt:
    if exc.response is not None:
        status = exc.response.status_code
        return failure(f"platform error {status}: {exc}", retryable=status >= 500)
    if isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout)):
        return failure(f"could not connect: {exc.__cause__}", retryable=True)
    return outcome_unknown(exc.__cause__ or exc)
