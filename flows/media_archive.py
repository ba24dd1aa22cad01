"""Archive post media once, after the post is stored, so no one's browser ever fetches it live.

A platform payload names media by address. Fetched live from the dashboard, the host learns who
looks and when (tracking), and what a dispatcher reveals may differ from what arrived (the host
can change it after review). Instead, a background job on the media queue (pages of up to
BATCH_SIZE posts, queued by intake next to triage, never waited on by it) fetches each item once:
bounded in size (refused past `max_bytes`, declared or streamed), an image or video content type
only, no redirects to or addresses naming a private, loopback or link-local host (unless
configured for a local test server), each host resolved once and connected to at the address
checked. The bytes go under the media dir (0600) with their SHA-256
in `post_media`; a failure is recorded with its reason and never retried by the dashboard.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import mimetypes
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from rq import Queue
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from config import Settings
from flows.context import MEDIA_QUEUE, AppContext, process_context
from models.db import private_dir, write_private
from models.media import PostMedia
from models.post_media import AttachedMedia, attached_media
from models.tables import Post
from models.types import utcnow

log = logging.getLogger(__name__)

JOB_FUNCTION = "flows.media_archive.archive_media"
BATCH_SIZE = 64
MAX_REDIRECTS = 3
ARCHIVED, FAILED = "archived", "failed"


class Refused(Exception):
    """Why an item was not archived (recorded on its row)."""


def enqueue(ctx: AppContext, post_ids: Sequence[int]) -> None:
    """Queue archive jobs for newly stored posts (one Redis round trip; nothing is fetched here)."""
    if not ctx.settings.media_archive.enabled or not post_ids:
        return
    ids = sorted(post_ids)
    pages = [ids[i:i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]
    with ctx.redis.pipeline() as pipe:
        ctx.queues[MEDIA_QUEUE].enqueue_many([
            Queue.prepare_data(JOB_FUNCTION, (page,), job_id=f"media-{page[0]}-{page[-1]}-{len(page)}", timeout=600,
                               failure_ttl=7 * 86400) for page in pages], pipeline=pipe)
        pipe.execute()


def archive_media(post_ids: list[int], ctx: AppContext | None = None) -> dict[str, int]:
    """The RQ job."""
    return run(ctx or process_context(), post_ids)


def run(ctx: AppContext, post_ids: Sequence[int]) -> dict[str, int]:
    counts = {ARCHIVED: 0, FAILED: 0}
    settings = ctx.settings
    if not settings.media_archive.enabled or not post_ids:
        return counts
    with Session(ctx.engine) as db:
        rows = db.exec(select(Post.id, Post.raw_payload).where(Post.id.in_(list(post_ids)))).all()
        done = set(db.exec(select(PostMedia.post_id, PostMedia.idx).where(PostMedia.post_id.in_(list(post_ids)))).all())
    todo = [(post_id, item) for post_id, raw in rows for item in attached_media(raw) if (post_id, item.index) not in done]
    if not todo:
        return counts
    cfg = settings.media_archive
    with httpx.Client(timeout=cfg.timeout_seconds, follow_redirects=False, trust_env=False,
                      headers={"user-agent": "Flare media archive"}) as client:
        for post_id, item in todo:
            record = archive_one(client, settings, post_id, item)
            status, stored = record.status, record.path
            with Session(ctx.engine) as db:
                db.add(record)
                try:
                    db.commit()
                except IntegrityError:  # archived meanwhile by another worker: keep the first copy
                    db.rollback()
                    if stored:
                        (settings.resolved_media_dir / stored).unlink(missing_ok=True)
                    continue
            counts[status] += 1
    return counts


def archive_one(client: httpx.Client, settings: Settings, post_id: int, item: AttachedMedia) -> PostMedia:
    record = PostMedia(post_id=post_id, idx=item.index, kind=item.kind, source_url=item.url[:4000], status=FAILED)
    try:
        content_type, data = _fetch(client, settings, item.url)
    except Refused as exc:
        record.error = str(exc)[:300]
        log.info("post %s media %s not archived: %s", post_id, item.index, record.error)
        return record
    except httpx.HTTPError as exc:
        record.error = f"unreachable ({type(exc).__name__})"
        return record
    digest = hashlib.sha256(data).hexdigest()
    ext = mimetypes.guess_extension(content_type) or ".bin"
    folder = private_dir(settings.resolved_media_dir / "posts" / str(post_id))
    final = write_private(folder / f"{item.index}-{digest[:16]}{ext}", data)
    record.status, record.path = ARCHIVED, str(final.relative_to(settings.resolved_media_dir))
    record.content_type, record.size, record.sha256, record.fetched_at = content_type, len(data), digest, utcnow()
    return record


def _lookup(host: str, port: int) -> list[str]:
    """Every address the name gives now (the system resolver)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _pinned_address(url: str, allow_private: bool) -> str:
    """Resolve the host once and check every address it names. The fetch then connects to the
    address checked, so a name that answers differently a moment later (DNS rebinding) cannot
    steer it to a private host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("not a web address")
    try:
        addresses = _lookup(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        raise Refused("host not found") from exc
    if not addresses:
        raise Refused("host not found")
    if not allow_private and not all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        raise Refused("the address names a private, loopback or link-local host")
    return addresses[0]


def _pinned_request(client: httpx.Client, url: str, address: str) -> httpx.Request:
    """GET `url` from `address`: the Host header and the TLS name (SNI and certificate check)
    stay the URL's own host."""
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return client.build_request("GET", target, headers={"host": parts.netloc.rpartition("@")[2]},
                                extensions={"sni_hostname": parts.hostname})


def _fetch(client: httpx.Client, settings: Settings, url: str) -> tuple[str, bytes]:
    cfg = settings.media_archive
    for _ in range(MAX_REDIRECTS + 1):
        address = _pinned_address(url, cfg.allow_private_addresses)
        response = client.send(_pinned_request(client, url, address), stream=True)
        try:
            if response.is_redirect:
                url = urljoin(url, response.headers.get("location", ""))
                continue
            if response.status_code != 200:
                raise Refused(f"answered HTTP {response.status_code}")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not any(content_type.startswith(prefix) for prefix in cfg.content_types):
                raise Refused(f"not an image or video ({content_type or 'no content type'})")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cfg.max_bytes:
                raise Refused(f"larger than {cfg.max_bytes} bytes")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > cfg.max_bytes:
                    raise Refused(f"larger than {cfg.max_bytes} bytes")
            return content_type, bytes(data)
        finally:
            response.close()
    raise Refused("too many redirects")


def media_path(settings: Settings, record: PostMedia) -> Path:
    """Where an archived item's bytes are; never outside the media dir."""
    root = settings.resolved_media_dir.resolve()
    path = (root / record.path).resolve()
    if root not in path.parents:
        raise ValueError("stored path escapes the media dir")
    return path
