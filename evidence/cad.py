"""Hand-off to computer-aided dispatch: an incident as an EIDO-shaped JSON document, delivered by
an HMAC-signed webhook with retries, every attempt logged in cad_deliveries.

The document follows the public structure of the NENA Emergency Incident Data Object (components
that reference each other by "$id"); docs/cad-mapping.md lists which Flare field goes where and
which parts are Flare extensions.

Signing: X-Flare-Timestamp is the Unix time of the attempt; X-Flare-Signature is
"sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)). Each attempt is signed afresh, so a
receiver may reject stale timestamps to stop replays.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from config.settings import CadSettings, Settings
from evidence.hashes import canonical_json, sha256_bytes
from evidence.media import incident_media
from evidence.redaction import UK_POSTCODE  # the same postcode shape redaction masks
from models.cad import CadDelivery
from models.enums import EventKind, IncidentStatus
from evidence.keys import evidence_engine
from models.events import append_event
from models.tables import Incident, IncidentPost, Post
from models.types import utcnow

EIDO_VERSION = "NENA-STA-024.1a (structure), Flare profile 1"
TIMESTAMP_HEADER = "X-Flare-Timestamp"
SIGNATURE_HEADER = "X-Flare-Signature"
DELIVERY_HEADER = "X-Flare-Delivery"
_RETRYABLE_STATUS = {408, 425, 429}
_MAX_RETRY_AFTER_S = 60.0

# Flare category -> incident type text (checked against the receiving CAD's registry at go-live).
INCIDENT_TYPES = {
    "medical": "Medical", "fire": "Fire", "violence": "Law Enforcement - Assault",
    "crime": "Law Enforcement", "traffic": "Traffic Collision", "hazard": "Hazardous Condition",
    "missing_person": "Missing Person", "self_harm": "Medical - Behavioral Health",
    "domestic_abuse": "Law Enforcement - Domestic", "other": "Other", "none": "Other",
}
PRIORITY = {"critical": 1, "high": 2, "medium": 3, "low": 4, "none": 5}
STATUS = {IncidentStatus.new.value: "Received", IncidentStatus.queued.value: "Pending",
          IncidentStatus.acknowledged.value: "Active", IncidentStatus.resolved.value: "Resolved",
          IncidentStatus.closed.value: "Closed"}


def _ts(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _civic_address(incident: Incident) -> dict[str, Any]:
    civic: dict[str, Any] = {}
    if incident.location_text:
        civic["locationDescription"] = incident.location_text
        postcode = UK_POSTCODE.search(incident.location_text)
        if postcode:
            civic["PC"] = postcode.group(0).upper()
            civic["country"] = "GB"
    return civic


def build_eido(session: Session, incident_id: int, cad: CadSettings,
               media_url: Callable[[int, int], str] | None = None) -> dict[str, Any]:
    """The incident as an EIDO-structured dict (raises LookupError if it does not exist)."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise LookupError(f"incident {incident_id} not found")
    tracking = f"urn:flare:{cad.agency_id}:incident:{incident.id}"
    agency_ref, location_ref = "agency-1", "location-1"
    posts = session.exec(select(Post).join(IncidentPost, IncidentPost.post_id == Post.id)
                         .where(IncidentPost.incident_id == incident_id).order_by(Post.id)).all()
    notes = [{"$id": "note-summary", "componentIdentifier": "note-summary",
              "noteDateTimeStamp": _ts(incident.updated_at), "noteText": incident.summary,
              "authorReference": {"$ref": agency_ref}}]
    persons = []
    for n, post in enumerate(posts, start=1):
        persons.append({"$id": f"person-{n}", "componentIdentifier": f"person-{n}",
                        "personRoleCommonRegistryText": "Reporting Party",
                        "contactInformation": {"socialMedia": {"platform": post.platform,
                                                               "handle": post.author_handle,
                                                               "accountId": post.author_id}}})
        notes.append({"$id": f"note-post-{post.id}", "componentIdentifier": f"note-post-{post.id}",
                      "noteDateTimeStamp": _ts(post.posted_at or post.received_at), "noteText": post.text,
                      "authorReference": {"$ref": f"person-{n}"},
                      "noteSource": f"{post.platform}:{post.external_id}"})
    links = []
    shared_locations = []
    for entry in incident_media(session, incident_id):
        if not entry.path:
            data = entry.data or {}
            if entry.kind == "location" and data.get("lat") is not None and data.get("lon") is not None:
                shared_locations.append((entry, data))
            continue  # texts stay in Flare: only files are linked
        ref = media_url(incident_id, entry.item_id) if media_url else f"urn:flare:media:{incident_id}:{entry.item_id}"
        links.append({"$id": f"media-{entry.item_id}", "componentIdentifier": f"media-{entry.item_id}",
                      "additionalDataType": entry.kind or "media", "additionalDataByReference": ref,
                      "sha256": entry.sha256})
    location: dict[str, Any] = {"$id": location_ref, "componentIdentifier": location_ref,
                                "locationByValue": {"civicAddress": _civic_address(incident)},
                                "locationConfidence": round(incident.location_confidence, 3)}
    if incident.lat is not None and incident.lon is not None:
        location["locationByValue"]["geo"] = {"type": "Point", "coordinates": [incident.lon, incident.lat]}
    locations = [location]
    # Fixes a reporter shared from their device: more precise than anything read from text.
    for entry, data in shared_locations:
        ref = f"location-shared-{entry.item_id}"
        locations.append({"$id": ref, "componentIdentifier": ref, "locationSource": "reporter device",
                          "lastUpdateTimeStamp": _ts(entry.recorded_at),
                          "locationByValue": {"geo": {"type": "Point", "coordinates": [data["lon"], data["lat"]]},
                                              "uncertaintyMeters": data.get("accuracy_m")},
                          "sha256": entry.sha256})
    return {
        "$id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, tracking + ':' + str(incident.updated_at))}",
        "eidoMessageIdentifier": f"urn:uuid:{uuid.uuid4()}",
        "sendingSystemIdentifier": cad.agency_id,
        "lastUpdateTimeStamp": _ts(incident.updated_at),
        "incidentComponent": [{
            "$id": "incident-1", "componentIdentifier": "incident-1",
            "incidentTrackingIdentifier": tracking,
            "localIncidentIdentifier": str(incident.id),
            "incidentTypeCommonRegistryText": INCIDENT_TYPES.get(incident.category, "Other"),
            "incidentTypeInternalText": incident.category,
            "incidentCommonPriorityNumber": PRIORITY.get(incident.urgency, 5),
            "incidentStatusCommonRegistryText": STATUS.get(incident.status, incident.status),
            "incidentCreationTimestamp": _ts(incident.created_at),
            "lastUpdateTimeStamp": _ts(incident.updated_at),
            "locationReference": [{"$ref": loc["$id"]} for loc in locations],
            "notesReference": [{"$ref": n["$id"]} for n in notes],
            "updatedByAgencyReference": {"$ref": agency_ref},
            "isTest": incident.is_test,
        }],
        "agencyComponent": [{"$id": agency_ref, "componentIdentifier": agency_ref,
                             "agencyIdentifier": cad.agency_id, "agencyName": cad.agency_name}],
        "locationComponent": locations,
        "notesComponent": notes,
        "personComponent": persons,
        "additionalDataComponent": links,
        "flareExtension": {"times": {"created": _ts(incident.created_at), "queued": _ts(incident.queued_at),
                                     "acknowledged": _ts(incident.acknowledged_at),
                                     "acknowledgedBy": incident.acknowledged_by or None,
                                     "resolved": _ts(incident.resolved_at), "closed": _ts(incident.closed_at)},
                           "urgency": incident.urgency, "reportCount": incident.report_count,
                           "silent": incident.silent, "profile": EIDO_VERSION},
    }


def export_eido(engine: Engine, incident_id: int, cad: CadSettings) -> str:
    """`flare cad export`: the incident's EIDO document as pretty JSON text."""
    with Session(engine) as session:
        return json.dumps(build_eido(session, incident_id, cad), indent=2, ensure_ascii=False)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str,
                     tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """What a receiver checks: a fresh timestamp and a matching signature (constant-time)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature or "")


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    attempts: int
    status_code: int | None
    payload_sha256: str
    error: str = ""


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(_MAX_RETRY_AFTER_S, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def deliver_incident(engine: Engine, incident_id: int, cad: CadSettings,
                     client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep,
                     media_url: Callable[[int, int], str] | None = None) -> DeliveryResult:
    """POST the incident's EIDO to the CAD webhook; retry 5xx/408/429/network errors with backoff."""
    secret = cad.webhook_secret.get_secret_value()
    if not cad.webhook_url or not secret:
        raise ValueError("CAD hand-off needs cad.webhook_url and cad.webhook_secret")
    with Session(engine) as session:
        body = canonical_json(build_eido(session, incident_id, cad, media_url))
    digest = sha256_bytes(body)
    delivery_id = str(uuid.uuid4())  # the same on every attempt: receivers can drop duplicates
    own_client = client is None
    client = client or httpx.Client(timeout=cad.timeout_seconds)
    status_code, error, ok, attempt = None, "", False, 0
    try:
        for attempt in range(1, max(1, cad.max_attempts) + 1):
            ts = int(time.time())
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(ts),
                       SIGNATURE_HEADER: sign(secret, ts, body), DELIVERY_HEADER: delivery_id}
            wait = cad.backoff_seconds * (2 ** (attempt - 1))
            try:
                response = client.post(cad.webhook_url, content=body, headers=headers)
                status_code, error = response.status_code, ""
                ok = 200 <= response.status_code < 300
                retryable = response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS
                if not ok:
                    error = f"HTTP {response.status_code}"
                    wait = _retry_after(response) or wait
            except httpx.HTTPError as exc:
                status_code, ok, retryable = None, False, True
                error = f"{type(exc).__name__}: {exc}"[:500]
            with Session(engine) as session:
                session.add(CadDelivery(incident_id=incident_id, url=cad.webhook_url, status_code=status_code,
                                        attempt=attempt, ok=ok, error=error, at=utcnow(), payload_sha256=digest))
                session.commit()
            if ok or not retryable or attempt >= cad.max_attempts:
                break
            sleep(wait)
    finally:
        if own_client:
            client.close()
    with Session(engine) as session:
        append_event(session, incident_id, EventKind.note, "cad",
                     {"cad_delivery": "delivered" if ok else "failed", "attempts": attempt,
                      "status_code": status_code, "payload_sha256": digest, "delivery_id": delivery_id})
        session.commit()
    return DeliveryResult(ok, attempt, status_code, digest, error)


def deliver_incident_job(incident_id: int, settings: Settings | None = None) -> bool:
    """RQ job: hand the incident to the configured CAD (each attempt is logged in cad_deliveries)."""
    settings = settings or Settings()
    engine = evidence_engine(settings)
    try:
        return deliver_incident(engine, incident_id, settings.cad).ok
    finally:
        engine.dispose()
