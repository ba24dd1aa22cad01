"""Reddit through praw: inbox mentions, unread messages and watched subreddits in; replies, DMs out.

Listings are read as raw JSON (praw's `Reddit.request`) so each item's payload is kept verbatim
and an odd item is flagged rather than lost. Items are marked read only in `after_commit`,
after they are stored. `skip_existing` is never used: anything already waiting must be read.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import praw
import prawcore
import requests
from praw.endpoints import API_PATH
from prawcore.exceptions import RequestException

from config.settings import RedditSettings
from connectors.common import (
    POLL_READ_TIMEOUT_S, RateLimitGate, RateLimited, SentItem, SentLedger, clean_str, failure, hedged, malformed_post,
    match_sent,
    outcome_unknown, parse_time, to_json_text, retry_after_reset,
)
from models.domain import DeliveryReceipt, OutboundRequest, RawPost
from models.enums import MessageKind

log = logging.getLogger(__name__)

PAGE_LIMIT = 100
MARK_READ_BATCH = 25  # Reddit accepts at most this many ids per read_message call
# Marking read goes beside the polling, not in its way (RedditInboxSource.after_commit).
_side_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reddit-side")


class AmbiguousWrite(Exception):
    """A POST whose connection broke after sending: the platform may have acted on it."""


class ReadTimedOut(TimeoutError):
    """A read that did not answer in time; the caller's own loop retries it (prawcore would
    retry it twice more first, tripling the wait for the next post)."""


class WriteSafeRequestor(prawcore.Requestor):
    """prawcore retries POSTs after read timeouts and broken connections, which could post a
    reply twice. This requestor reports those as AmbiguousWrite, which prawcore does not retry;
    a read timeout becomes ReadTimedOut, also left to the caller."""

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        method = str(args[0] if args else kwargs.get("method", "")).upper()
        try:
            # Ours, not prawcore's per-call default: make_reddit sets it per use (polls vs sends).
            return self._http.request(*args, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise RequestException(exc, args, kwargs) from None
        except (requests.exceptions.ReadTimeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ConnectionError) as exc:
            if method == "POST" and "NewConnectionError" not in repr(exc):
                raise RequestException(AmbiguousWrite(str(exc)), args, kwargs) from None
            if isinstance(exc, requests.exceptions.ReadTimeout):
                raise RequestException(ReadTimedOut(str(exc)), args, kwargs) from None
            raise RequestException(exc, args, kwargs) from None
        except Exception as exc:  # noqa: BLE001 - prawcore's contract: wrap everything
            raise RequestException(exc, args, kwargs) from None


class ServerErrorAnswer(Exception):
    """A poll answered with a 5xx, handed straight back to the caller (see PollRequestor)."""


class PollRequestor(WriteSafeRequestor):
    """For the sources' client, which only polls (and marks read): a 5xx answer goes straight back
    to the polling loop, which retries within half a second (connectors.runner). prawcore would
    retry it itself first, sleeping up to 2 s and then 2-4 s between tries: seconds during which
    a post already on the platform waits to be stored. A poll (or the login's token request) whose
    answer stalls is sent again alongside (common.hedged)."""

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        method = str(args[0] if args else kwargs.get("method", "")).upper()
        url = str(args[1] if len(args) > 1 else kwargs.get("url", ""))
        # A read, or the login's token request (asked twice, it only hands out two tokens): a
        # stalled answer is asked for again (common.hedged).
        if method == "GET" or url.rstrip("/").endswith("/access_token"):
            response = hedged(lambda: WriteSafeRequestor.request(self, *args, timeout=timeout, **kwargs),
                              discard=requests.Response.close)
        else:
            response = super().request(*args, timeout=timeout, **kwargs)
        if response.status_code >= 500:
            raise RequestException(ServerErrorAnswer(f"HTTP {response.status_code}"), args, kwargs)
        return response


WRITE_TIMEOUT = 16  # prawcore's default, for the replier
POLL_TIMEOUT = POLL_READ_TIMEOUT_S  # the sources only read (safe to repeat): see connectors.common


def make_reddit(settings: RedditSettings, timeout: float = WRITE_TIMEOUT, *, polls: bool = False) -> praw.Reddit:
    """A client for the replier (prawcore's own retries of 5xx answers kept), or with `polls` for
    the sources (a 5xx is the polling loop's to retry: PollRequestor)."""
    kwargs: dict[str, Any] = {}
    if settings.base_url:
        base = settings.base_url.rstrip("/")
        kwargs = {"oauth_url": base, "reddit_url": base, "short_url": base}
    return praw.Reddit(
        client_id=settings.client_id, client_secret=settings.client_secret.get_secret_value(),
        username=settings.username, password=settings.password.get_secret_value(),
        user_agent=settings.user_agent, check_for_updates=False, check_for_async=False,
        requestor_class=PollRequestor if polls else WriteSafeRequestor, requestor_kwargs={"timeout": timeout}, **kwargs,
    )


def _reset_of(exc: prawcore.exceptions.ResponseException) -> float:
    headers = exc.response.headers
    for name in ("x-ratelimit-reset", "retry-after"):
        value = str(headers.get(name, ""))
        if value.replace(".", "", 1).isdigit():
            return time.time() + max(1.0, float(value))
    return time.time() + 60.0


def thing_to_raw(child: Any) -> RawPost:
    """One listing child ({kind, data}) → RawPost. Never raises."""
    raw_text = to_json_text(child)
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        return malformed_post("reddit", raw_text, "listing child is not a {kind, data} object")
    kind, data = child.get("kind"), child["data"]
    name = data.get("name")
    hint = name if isinstance(name, str) and isinstance(kind, str) and name.startswith(f"{kind}_") else ""
    if kind not in ("t1", "t3", "t4") or not hint:
        return malformed_post("reddit", raw_text, f"unexpected kind {kind!r} or fullname {name!r}", hint)
    if kind == "t3":
        title, body = data.get("title"), data.get("selftext", "")
        text = f"{title}\n\n{body}".strip() if isinstance(title, str) and isinstance(body, str) else None
    else:
        text = data.get("body") if isinstance(data.get("body"), str) else None
    created = data.get("created_utc")
    author = data.get("author")
    if text is None or isinstance(created, bool) or not isinstance(created, (int, float)) \
            or not math.isfinite(created) or not (author is None or isinstance(author, str)):
        return malformed_post("reddit", raw_text, "missing body/title, created_utc or author", hint,
                              is_dm=kind == "t4")
    author = "" if author in (None, "[deleted]") else author
    conversation = clean_str(data.get("link_id")) if kind == "t1" else \
        (clean_str(data.get("first_message_name")) or hint if kind == "t4" else hint)
    return RawPost(
        platform="reddit", external_id=hint, text=text, raw_payload=raw_text, is_dm=kind == "t4",
        author_id=author, author_handle=author, posted_at=parse_time(created),
        reply_to_external_id=clean_str(data.get("parent_id")), conversation_id=conversation,
        reply_ref={"fullname": hint, "author": author, "subreddit": clean_str(data.get("subreddit"))},
    )


def _created(post: RawPost) -> float:
    return post.posted_at.timestamp() if post.posted_at else 0.0


class _RedditSource:
    platform = "reddit"

    def __init__(self, settings: RedditSettings, name: str, reddit: praw.Reddit | None = None) -> None:
        self.name = name
        self.settings = settings
        self.poll_seconds = settings.poll_seconds
        self.reddit = reddit or make_reddit(settings, timeout=POLL_TIMEOUT, polls=True)
        self.gate = RateLimitGate()

    @property
    def rate_limited_until(self) -> float:
        return self.gate.until

    def _listing(self, path: str, params: dict[str, Any]) -> list[Any] | RawPost:
        try:
            body = self.reddit.request(method="GET", path=path, params=params)
        except prawcore.exceptions.BadJSON as exc:
            return malformed_post("reddit", exc.response.content, f"{path} response is not JSON")
        except prawcore.exceptions.ResponseException as exc:
            # TooManyRequests, and a 429 on the login-token request (a plain ResponseException).
            if exc.response.status_code != 429:
                raise
            self.gate.close_until(_reset_of(exc))
            raise RateLimited(self.gate.until, "reddit") from exc
        children = ((body or {}).get("data") or {}).get("children") if isinstance(body, dict) else None
        if not isinstance(children, list):
            return malformed_post("reddit", body, f"{path} response is not a listing")
        return children

    def _read_new(self, path: str, state: dict[str, Any]) -> tuple[list[RawPost], dict[str, Any]]:
        """Items newer than the stored anchor fullname; by created_utc if the anchor is gone.

        The newest page is read first: when the anchor is on it (fewer than a page arrived since,
        the usual case) what is above it is new, and that one request is the whole poll. Asking
        `before=` the anchor first cost a second request on every poll that found nothing, since
        an empty answer also means a deleted anchor and was checked with the newest page: twice
        the requests, each able to draw the 429 that closes the platform to every poll. When
        the anchor is not on the newest page (a page or more arrived, or it was deleted), the
        read goes on from it as before."""
        anchor = clean_str(state.get("anchor"))
        page = self._listing(path, {"limit": PAGE_LIMIT})
        if isinstance(page, RawPost):
            return [page], state
        names = [c.get("data", {}).get("name") if isinstance(c, dict) and isinstance(c.get("data"), dict) else None
                 for c in page]
        if not anchor:
            children = page
        elif anchor in names:
            # Above the anchor, and (should a page come not quite newest first) anything below it
            # that is newer; what was stored already the unique key absorbs.
            at = names.index(anchor)
            anchor_created = _child_created(page[at])
            children = page[:at] + [c for c in page[at + 1:] if _child_created(c) > anchor_created]
        else:
            children = self._listing(path, {"limit": PAGE_LIMIT, "before": anchor})
            if isinstance(children, RawPost):
                return [children], state
            if not children:
                # A deleted anchor makes `before=` answer with nothing; fall back to time.
                since = float(state.get("created_utc") or 0.0)
                children = [c for c in page if _child_created(c) > since]
        posts = [thing_to_raw(c) for c in children]
        # created_utc as Reddit sent it: a datetime round trip could make the anchor look newer.
        created = {p.external_id: _child_created(c) for p, c in zip(posts, children) if not p.malformed}
        if not created:
            return posts, state
        newest = max(created, key=lambda fullname: created[fullname])
        return posts, {"anchor": newest, "created_utc": created[newest]}


def _child_created(child: Any) -> float:
    created = child.get("data", {}).get("created_utc") if isinstance(child, dict) and \
        isinstance(child.get("data"), dict) else None
    return float(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else math.inf


class RedditInboxSource(_RedditSource):
    """Username mentions plus everything unread (private messages, comment replies)."""

    def __init__(self, settings: RedditSettings, reddit: praw.Reddit | None = None) -> None:
        super().__init__(settings, "reddit:inbox", reddit)
        self._to_mark_read: set[str] = set()  # the last poll's unread items (its fetch replaces it)
        self._mark_lock = threading.Lock()
        self._marks_due: dict[str, None] = {}  # stored, not yet marked read (oldest first)
        self._marking = False

    def fetch(self, cursor: dict[str, Any]) -> tuple[list[RawPost], dict[str, Any]]:
        """Both listings; one that fails does not hold back what the other read: those posts are
        stored now and the failed listing is read again on the next poll (its anchor did not
        move). A poll that read nothing fails with the first failure."""
        if self.gate.is_closed():
            return [], cursor
        mentions_state = cursor.get("mentions", {})
        failed: list[Exception] = []
        try:
            mentions, mentions_state = self._read_new(API_PATH["mentions"], mentions_state)
        except Exception as exc:  # noqa: BLE001 - raised below unless the other listing answers
            mentions, failed = [], [exc]
        unread_posts: list[RawPost] = []
        # A 429 on the first holds the second back too; so does a stall (the runner polls again at
        # once, rather than after the second listing's own timeout).
        stalled = bool(failed) and isinstance(getattr(failed[0], "original_exception", None), ReadTimedOut)
        if not self.gate.is_closed() and not stalled:
            try:
                unread = self._listing(API_PATH["unread"], {"limit": PAGE_LIMIT, "mark": "false"})
                unread_posts = [unread] if isinstance(unread, RawPost) else [thing_to_raw(c) for c in unread]
            except Exception as exc:  # noqa: BLE001 - as above
                failed.append(exc)
        if failed and not (mentions or unread_posts):
            raise failed[0]  # nothing read: the poll failed (a 429 keeps its own kind)
        if failed:
            log.warning("reddit:inbox: one listing failed (%s); storing the other's %d posts now", failed[0],
                        len(mentions) + len(unread_posts))
        self._to_mark_read = {p.external_id for p in unread_posts if not p.external_id.startswith("malformed:")}
        by_id: dict[str, RawPost] = {}
        for post in mentions + unread_posts:
            by_id.setdefault(post.external_id, post)
        posts = sorted(by_id.values(), key=_created)
        return posts, {"mentions": mentions_state}

    def after_commit(self, posts: Sequence[RawPost]) -> None:
        """Mark read only what is now stored, beside the polling rather than in its way: the
        read_message POST carries nobody's call for help, and one whose answer stalls (up to the
        3 s timeout) or draws a 429 held the next poll of the inbox behind it. One mark is in
        flight at a time; what is stored meanwhile goes with the next. A mark that fails leaves
        its items unread: the next poll reads them again (the unique key absorbs them) and they
        are marked after that one. Nothing is marked while the platform's rate limit is closed
        (the POST would only meet the 429, or open the next window in front of a poll), and a 429
        to it closes the gate the polls wait on."""
        fullnames = [p.external_id for p in posts if p.external_id in self._to_mark_read]
        if not fullnames:
            return
        with self._mark_lock:
            self._marks_due.update(dict.fromkeys(fullnames))
            if self._marking:
                return
            self._marking = True
        _side_pool.submit(self._mark_due)

    @property
    def marks_due(self) -> int:
        """How many stored items are not yet marked read (those in flight included)."""
        with self._mark_lock:
            return len(self._marks_due)

    def _mark_due(self) -> None:
        while True:
            with self._mark_lock:
                if not self._marks_due or self.gate.is_closed():
                    self._marking = False
                    return
                batch = list(self._marks_due)[:MARK_READ_BATCH]
            try:
                self.reddit.post(API_PATH["read_message"], data={"id": ",".join(batch)})
            except Exception as exc:  # noqa: BLE001 - the posts are safe; only the read flag is late
                if isinstance(exc, prawcore.exceptions.ResponseException) and exc.response.status_code == 429:
                    self.gate.close_until(_reset_of(exc))
                log.warning("reddit: mark_read failed for %d items: %s", len(batch), exc)
                with self._mark_lock:
                    self._marking = False
                return
            with self._mark_lock:
                for fullname in batch:
                    self._marks_due.pop(fullname, None)


class RedditSubredditSource(_RedditSource):
    """New submissions and comments in one watched subreddit."""

    def __init__(self, settings: RedditSettings, subreddit: str, reddit: praw.Reddit | None = None) -> None:
        super().__init__(settings, f"reddit:r/{subreddit}", reddit)
        self.subreddit = subreddit

    def fetch(self, cursor: dict[str, Any]) -> tuple[list[RawPost], dict[str, Any]]:
        if self.gate.is_closed():
            return [], cursor
        submissions, sub_state = self._read_new(f"r/{self.subreddit}/new", cursor.get("submissions", {}))
        comments, com_state = self._read_new(f"r/{self.subreddit}/comments", cursor.get("comments", {}))
        return sorted(submissions + comments, key=_created), {"submissions": sub_state, "comments": com_state}

    def after_commit(self, posts: Sequence[RawPost]) -> None:
        """Public subreddit items have no read state."""


class RedditReplier:
    platform = "reddit"

    def __init__(self, settings: RedditSettings, dm_subject: str, reddit: praw.Reddit | None = None) -> None:
        self.reddit = reddit or make_reddit(settings)
        self.username = settings.username
        self.dm_subject = dm_subject[:100]
        self.ledger = SentLedger()

    def find_sent(self, request: OutboundRequest, since: datetime, exclude: frozenset[str]) -> DeliveryReceipt | None:
        """Our sent messages to the recipient (a reply to a private message is one too), or our
        recent comments under the post; prawcore's exceptions propagate."""
        parent = request.in_reply_to_external_id or str(request.reply_ref.get("fullname", ""))
        if request.kind == MessageKind.dm.value or parent.startswith("t4_"):
            children = self._things(API_PATH["sent"])
            if request.kind == MessageKind.dm.value:
                wanted = [d for d in children if str(d.get("dest", "")).lower() == request.recipient_id.lower()]
            else:
                wanted = [d for d in children if d.get("parent_id") == parent]
        else:
            wanted = [d for d in self._things(f"user/{self.username}/comments/") if d.get("parent_id") == parent]
        items = [SentItem(clean_str(d.get("name")), clean_str(d.get("body")), parse_time(d.get("created_utc")))
                 for d in wanted if clean_str(d.get("name"))]
        found = match_sent(items, request.text, since, exclude)
        return self.ledger.remember(request.idempotency_key, found) if found is not None else None

    def _things(self, path: str) -> list[dict[str, Any]]:
        body = self.reddit.request(method="GET", path=path, params={"limit": PAGE_LIMIT, "sort": "new"})
        children = ((body or {}).get("data") or {}).get("children") if isinstance(body, dict) else None
        return [c["data"] for c in children or [] if isinstance(c, dict) and isinstance(c.get("data"), dict)]

    def supports_dm(self, request: OutboundRequest) -> bool:
        return bool(request.recipient_id)

    def send(self, request: OutboundRequest) -> DeliveryReceipt:
        remembered = self.ledger.get(request.idempotency_key)
        if remembered is not None:
            return remembered
        try:
            if request.kind == MessageKind.dm.value:
                if not request.recipient_id:
                    return failure("no recipient for DM", retryable=False)
                # Reddit's compose answers without an id for the new message.
                self.reddit.redditor(request.recipient_id).message(subject=self.dm_subject, message=request.text)
                message_id = ""
            else:
                parent = request.in_reply_to_external_id or str(request.reply_ref.get("fullname", ""))
                if not parent:
                    return failure("no post to reply to", retryable=False)
                created = self.reddit.post(API_PATH["comment"], data={"thing_id": parent, "text": request.text})
                message_id = created[0].fullname if isinstance(created, list) and created else ""
        except praw.exceptions.RedditAPIException as exc:
            kinds = {item.error_type for item in exc.items}
            if "RATELIMIT" in kinds:
                return failure(f"rate limited: {exc}", retryable=True, retry_after=60.0)
            # Everything else (DMs closed, user gone, thread locked...) fails the same way again.
            return failure(f"refused: {exc}", retryable=False)
        except prawcore.exceptions.TooManyRequests as exc:
            return failure("rate limited", retryable=True, retry_after=retry_after_reset(_reset_of(exc)))
        except prawcore.exceptions.ServerError as exc:
            return failure(f"server error: {exc}", retryable=True)
        except (prawcore.exceptions.Forbidden, prawcore.exceptions.NotFound, prawcore.exceptions.BadRequest) as exc:
            return failure(f"refused: {exc}", retryable=False)
        except RequestException as exc:
            if isinstance(exc.original_exception, AmbiguousWrite):
                return outcome_unknown(exc.original_exception)
            return failure(f"could not reach Reddit: {exc.original_exception}", retryable=True)
        except prawcore.exceptions.ResponseException as exc:
            status = exc.response.status_code
            if status == 429:  # e.g. the login-token request, which prawcore does not classify
                return failure("rate limited", retryable=True, retry_after=retry_after_reset(_reset_of(exc)))
            return failure(f"unexpected response: {exc}", retryable=status >= 500)
        receipt = DeliveryReceipt(ok=True, platform_message_id=message_id)
        return self.ledger.remember(request.idempotency_key, receipt)
