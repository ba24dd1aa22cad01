"""X (API v2) through tweepy: mentions and DMs in, replies and DMs out.

tweepy is used with `return_type=dict` so we see the payload exactly as sent: a tweet with a
missing or odd field becomes a flagged malformed post instead of an exception inside tweepy
that would lose the whole page.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter

from config.settings import XSettings
from connectors.common import (
    LOOKUP_CLOCK_SLACK, POLL_CONNECT_TIMEOUT_S, POLL_READ_TIMEOUT_S, RateLimitGate, RateLimited, SentItem,
    SentLedger, clean_str, failure, hedged, malformed_post,
    match_sent, outcome_unknown, parse_time, retry_after_reset,
)
from models.domain import DeliveryReceipt, GeoPoint, OutboundRequest, RawPost
from models.enums import MessageKind

log = logging.getLogger(__name__)

X_API_PREFIX = "https://api.twitter.com"
REQUEST_TIMEOUT = (5.0, 20.0)  # connect, read, for writes: tweepy sets none
# Reads (polls, lookups) are safe to repeat: a hung one is abandoned within seconds and tried
# again, so a slow platform answer cannot hold a source's next post for long.
READ_TIMEOUT = (POLL_CONNECT_TIMEOUT_S, POLL_READ_TIMEOUT_S)
MAX_PAGES = 50  # 5,000 items: more than X keeps in a mention timeline (~800)
TWEET_FIELDS = ["created_at", "geo", "conversation_id", "in_reply_to_user_id", "author_id"]
EXPANSIONS = ["author_id", "geo.place_id"]
USER_FIELDS = ["location", "username", "name"]
PLACE_FIELDS = ["full_name", "geo", "country_code"]
DM_FIELDS = ["id", "text", "event_type", "created_at", "sender_id", "dm_conversation_id"]


class _BaseUrlAdapter(HTTPAdapter):
    """Sends X API requests to `base_url` (the sandbox), gives every request a timeout, and sends
    a read again when its answer stalls."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.base_url and request.url and request.url.startswith(X_API_PREFIX):
            request.url = self.base_url + request.url[len(X_API_PREFIX):]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = READ_TIMEOUT if request.method == "GET" else REQUEST_TIMEOUT
        if request.method == "GET":  # a read: a stalled answer is asked for again (common.hedged)
            return hedged(lambda: HTTPAdapter.send(self, request, **kwargs), discard=requests.Response.close)
        return super().send(request, **kwargs)


def has_user_auth(settings: XSettings) -> bool:
    return all(s.get_secret_value() for s in (settings.consumer_key, settings.consumer_secret,
                                              settings.access_token, settings.access_token_secret))


def make_client(settings: XSettings, gate: RateLimitGate | None = None) -> tweepy.Client:
    client = tweepy.Client(
        bearer_token=settings.bearer_token.get_secret_value() or None,
        consumer_key=settings.consumer_key.get_secret_value() or None,
        consumer_secret=settings.consumer_secret.get_secret_value() or None,
        access_token=settings.access_token.get_secret_value() or None,
        access_token_secret=settings.access_token_secret.get_secret_value() or None,
        return_type=dict, wait_on_rate_limit=False,
    )
    client.session.mount(X_API_PREFIX, _BaseUrlAdapter(settings.base_url))
    if gate is not None:
        client.session.hooks["response"].append(_rate_limit_hook(gate))
    return client


def _rate_limit_hook(gate: RateLimitGate):
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # Close the gate before the 429 comes: remaining 0 means the next call would fail.
        if response.headers.get("x-rate-limit-remaining") == "0":
            reset = response.headers.get("x-rate-limit-reset", "")
            if reset.isdigit():
                gate.close_until(float(reset))
    return hook


def _reset_of(exc: tweepy.HTTPException) -> float:
    reset = exc.response.headers.get("x-rate-limit-reset", "") if exc.response is not None else ""
    return float(reset) if reset.isdigit() else time.time() + 60.0


def geo_of(tweet: dict[str, Any], places: dict[str, dict[str, Any]]) -> GeoPoint | None:
    """Exact coordinates when present, else the centre of the tagged place's bounding box."""
    geo = tweet.get("geo") if isinstance(tweet.get("geo"), dict) else {}
    place = places.get(clean_str(geo.get("place_id"))) or {}
    place_name = clean_str(place.get("full_name"))
    coords = (geo.get("coordinates") or {}).get("coordinates") if isinstance(geo.get("coordinates"), dict) else None
    if isinstance(coords, list) and len(coords) == 2:
        point = _valid_point(coords[1], coords[0])
        if point:
            return GeoPoint(point[0], point[1], place_name)
    bbox = ((place.get("geo") or {}).get("bbox")) if isinstance(place.get("geo"), dict) else None
    if isinstance(bbox, list) and len(bbox) == 4:
        try:
            west, south, east, north = (float(v) for v in bbox)
        except (TypeError, ValueError):
            return None
        point = _valid_point((south + north) / 2, (west + east) / 2)
        if point:
            return GeoPoint(point[0], point[1], place_name)
    return None


def _valid_point(lat: Any, lon: Any) -> tuple[float, float] | None:
    if isinstance(lat, bool) or isinstance(lon, bool) or not isinstance(lat, (int, float)) \
            or not isinstance(lon, (int, float)):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return float(lat), float(lon)


def _index(includes: Any, key: str) -> dict[str, dict[str, Any]]:
    entries = includes.get(key) if isinstance(includes, dict) else None
    if not isinstance(entries, list):
        return {}
    return {str(e["id"]): e for e in entries if isinstance(e, dict) and "id" in e}


def tweet_to_raw(tweet: Any, users: dict[str, dict[str, Any]], places: dict[str, dict[str, Any]],
                 raw_text: str) -> RawPost:
    """One mention → RawPost. Never raises: what we cannot read is kept, flagged."""
    if not isinstance(tweet, dict):
        return malformed_post("x", raw_text, "tweet is not an object")
    tweet_id, text = tweet.get("id"), tweet.get("text")
    if not (isinstance(tweet_id, str) and tweet_id.isdigit()):
        hint = str(tweet_id) if isinstance(tweet_id, int) and not isinstance(tweet_id, bool) else ""
        return malformed_post("x", raw_text, "tweet id missing or not a numeric string", hint)
    if not isinstance(text, str):
        return malformed_post("x", raw_text, "tweet text missing or not a string", tweet_id)
    author_id = clean_str(tweet.get("author_id"))
    user = users.get(author_id, {})
    return RawPost(
        platform="x", external_id=tweet_id, text=text, raw_payload=raw_text,
        author_id=author_id, author_handle=clean_str(user.get("username")),
        author_name=clean_str(user.get("name")), author_location=clean_str(user.get("location")),
        posted_at=parse_time(tweet.get("created_at")),
        conversation_id=clean_str(tweet.get("conversation_id")),
        reply_ref={"tweet_id": tweet_id, "author_id": author_id},
        geo=geo_of(tweet, places),
    )


def dm_event_to_raw(event: Any, users: dict[str, dict[str, Any]], raw_text: str) -> RawPost:
    if not isinstance(event, dict):
        return malformed_post("x", raw_text, "DM event is not an object", is_dm=True)
    event_id, text, sender = event.get("id"), event.get("text"), event.get("sender_id")
    if not (isinstance(event_id, str) and event_id.isdigit()):
        return malformed_post("x", raw_text, "DM event id missing or not a numeric string", is_dm=True)
    if not isinstance(text, str) or not isinstance(sender, str):
        return malformed_post("x", raw_text, "DM text or sender missing", f"dm:{event_id}", is_dm=True)
    user = users.get(sender, {})
    return RawPost(
        platform="x", external_id=f"dm:{event_id}", text=text, raw_payload=raw_text, is_dm=True,
        author_id=sender, author_handle=clean_str(user.get("username")), author_name=clean_str(user.get("name")),
        author_location=clean_str(user.get("location")), posted_at=parse_time(event.get("created_at")),
        conversation_id=clean_str(event.get("dm_conversation_id")),
        reply_ref={"dm_event_id": event_id, "participant_id": sender},
    )


class _XSource:
    platform = "x"

    def __init__(self, settings: XSettings, name: str) -> None:
        self.name = name
        self.settings = settings
        self.poll_seconds = settings.poll_seconds
        self.gate = RateLimitGate()
        self.client = make_client(settings, self.gate)
        self._last_body = ""
        self.client.session.hooks["response"].append(self._remember_body)

    @property
    def rate_limited_until(self) -> float:
        return self.gate.until

    def _remember_body(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_body = response.text

    def _call(self, method, **kwargs: Any) -> dict[str, Any] | RawPost:
        """One API call; a body that is not JSON comes back as a malformed RawPost."""
        try:
            result = method(**kwargs)
        except tweepy.TooManyRequests as exc:
            self.gate.close_until(_reset_of(exc))
            raise RateLimited(self.gate.until, "x") from exc
        except requests.exceptions.JSONDecodeError as exc:
            return malformed_post("x", self._last_body, f"response is not JSON: {exc}")
        if not isinstance(result, dict):
            return malformed_post("x", result, "response is not a JSON object")
        return result

    def after_commit(self, posts: Sequence[RawPost]) -> None:
        """X has no read markers: the checkpoint is all the bookkeeping there is."""


class XMentionsSource(_XSource):
    """Mentions of the service account, newest id saved only after all pages are persisted."""

    def __init__(self, settings: XSettings) -> None:
        super().__init__(settings, "x:mentions")

    def fetch(self, cursor: dict[str, Any]) -> tuple[list[RawPost], dict[str, Any]]:
        if self.gate.is_closed():
            return [], cursor
        since_id = clean_str(cursor.get("since_id")) or None
        posts: list[RawPost] = []
        newest: str | None = None
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = self._call(
                self.client.get_users_mentions, id=self.settings.user_id, since_id=since_id,
                pagination_token=token, max_results=100, tweet_fields=TWEET_FIELDS,
                expansions=EXPANSIONS, user_fields=USER_FIELDS, place_fields=PLACE_FIELDS, user_auth=False)
            if isinstance(page, RawPost):
                # Keep the unreadable page; the cursor stays put so the next poll reads again.
                return posts + [page], cursor
            meta = page.get("meta") if isinstance(page.get("meta"), dict) else {}
            users, places = _index(page.get("includes"), "users"), _index(page.get("includes"), "places")
            data = page.get("data", [])
            for tweet in data if isinstance(data, list) else [data]:
                posts.append(tweet_to_raw(tweet, users, places, _json(tweet)))
            newest = _max_id(newest, clean_str(meta.get("newest_id")))
            token = clean_str(meta.get("next_token")) or None
            if not token:
                break
        for post in posts:
            newest = _max_id(newest, post.external_id)
        return sorted(posts, key=_id_order), ({"since_id": newest} if newest else cursor)


class XDirectMessagesSource(_XSource):
    """DM events addressed to the service; X offers no since_id here, so page to the last seen id."""

    def __init__(self, settings: XSettings) -> None:
        super().__init__(settings, "x:dms")

    def fetch(self, cursor: dict[str, Any]) -> tuple[list[RawPost], dict[str, Any]]:
        if self.gate.is_closed():
            return [], cursor
        last_seen = int(cursor["last_event_id"]) if str(cursor.get("last_event_id", "")).isdigit() else 0
        posts: list[RawPost] = []
        newest = last_seen
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = self._call(
                self.client.get_direct_message_events, dm_event_fields=DM_FIELDS, event_types="MessageCreate",
                expansions=["sender_id"], user_fields=USER_FIELDS, max_results=100, pagination_token=token,
                user_auth=True)
            if isinstance(page, RawPost):
                page.is_dm = True
                return posts + [page], cursor
            users = _index(page.get("includes"), "users")
            data = page.get("data", [])
            reached_seen = False
            for event in data if isinstance(data, list) else [data]:
                event_id = event.get("id") if isinstance(event, dict) else None
                if isinstance(event_id, str) and event_id.isdigit():
                    if int(event_id) <= last_seen:
                        reached_seen = True
                        continue
                    newest = max(newest, int(event_id))
                if isinstance(event, dict) and event.get("sender_id") == self.settings.user_id:
                    continue  # our own outgoing messages appear in the same event list
                posts.append(dm_event_to_raw(event, users, _json(event)))
            meta = page.get("meta") if isinstance(page.get("meta"), dict) else {}
            token = clean_str(meta.get("next_token")) or None
            if reached_seen or not token:
                break
        return sorted(posts, key=_id_order), ({"last_event_id": str(newest)} if newest else cursor)


def _id_order(post: RawPost) -> tuple[int, int]:
    """Oldest first by snowflake id (pages may arrive shuffled); unreadable items last."""
    digits = post.external_id.removeprefix("dm:")
    return (0, int(digits)) if digits.isdigit() else (1, 0)


def _max_id(current: str | None, candidate: str) -> str | None:
    if not candidate.isdigit():
        return current
    return candidate if current is None or int(candidate) > int(current) else current


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


class XReplier:
    """Public replies and DMs. Needs OAuth 1.0a user credentials (X refuses app-only tokens here)."""

    platform = "x"

    def __init__(self, settings: XSettings) -> None:
        self.client = make_client(settings)
        self.user_id = settings.user_id
        self.ledger = SentLedger()

    def find_sent(self, request: OutboundRequest, since: datetime, exclude: frozenset[str]) -> DeliveryReceipt | None:
        """Our DMs in the conversation with the recipient, or our recent tweets replying to the
        post; tweepy's exceptions propagate (the platform could not be asked)."""
        if request.kind == MessageKind.dm.value:
            page = self.client.get_direct_message_events(
                participant_id=request.recipient_id, dm_event_fields=DM_FIELDS, event_types="MessageCreate",
                max_results=100, user_auth=True)
            items = [SentItem(str(e.get("id", "")), clean_str(e.get("text")), parse_time(e.get("created_at")))
                     for e in _data(page) if e.get("sender_id") == self.user_id]
        else:
            page = self.client.get_users_tweets(
                id=self.user_id, start_time=since - LOOKUP_CLOCK_SLACK, max_results=100,
                tweet_fields=["created_at", "referenced_tweets"], user_auth=True)
            items = [SentItem(str(t.get("id", "")), clean_str(t.get("text")), parse_time(t.get("created_at")))
                     for t in _data(page) if _replies_to(t, request.in_reply_to_external_id)]
        found = match_sent(items, request.text, since, exclude)
        return self.ledger.remember(request.idempotency_key, found) if found is not None else None

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
                result = self.client.create_direct_message(participant_id=request.recipient_id,
                                                           text=request.text, user_auth=True)
                message_id = ((result or {}).get("data") or {}).get("dm_event_id", "")
            else:
                if not request.in_reply_to_external_id:
                    return failure("no post to reply to", retryable=False)
                result = self.client.create_tweet(text=request.text,
                                                  in_reply_to_tweet_id=request.in_reply_to_external_id,
                                                  user_auth=True)
                message_id = ((result or {}).get("data") or {}).get("id", "")
        except tweepy.TooManyRequests as exc:
            return failure("rate limited", retryable=True, retry_after=retry_after_reset(_reset_of(exc)))
        except tweepy.Forbidden as exc:
            return failure(f"not allowed (DMs closed or reply restricted): {exc}", retryable=False)
        except (tweepy.BadRequest, tweepy.NotFound, tweepy.Unauthorized) as exc:
            return failure(f"rejected: {exc}", retryable=False)
        except tweepy.TwitterServerError as exc:
            return failure(f"server error: {exc}", retryable=True)
        except requests.exceptions.ConnectTimeout as exc:
            return failure(f"could not connect: {exc}", retryable=True)
        except requests.exceptions.RequestException as exc:
            if _never_connected(exc):
                return failure(f"could not connect: {exc}", retryable=True)
            return outcome_unknown(exc)
        except tweepy.HTTPException as exc:
            return failure(f"unexpected response: {exc}", retryable=False)
        receipt = DeliveryReceipt(ok=True, platform_message_id=str(message_id),
                                  error="" if message_id else "accepted, but no id in the response")
        return self.ledger.remember(request.idempotency_key, receipt)


def _data(page: Any) -> list[dict[str, Any]]:
    data = page.get("data") if isinstance(page, dict) else None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _replies_to(tweet: dict[str, Any], parent: str) -> bool:
    refs = tweet.get("referenced_tweets")
    return bool(parent) and isinstance(refs, list) and any(
        isinstance(r, dict) and r.get("type") == "replied_to" and r.get("id") == parent for r in refs)


def _never_connected(exc: BaseException) -> bool:
    """True when the request provably never reached the server (refused/unresolvable)."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "NameResolutionError" in text
