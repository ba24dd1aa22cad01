"""CAD hand-off: EIDO structure, signed webhook deliveries retried on 5xx, every attempt logged."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from config.settings import CadSettings
from evidence.cad import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_eido,
    deliver_incident,
    export_eido,
    verify_signature,
)
from evidence.chain import verify_all
from evidence.hashes import sha256_bytes
from evidence_test_helpers import make_incident
from models.cad import CadDelivery
from models.tables import IncidentEvent

SECRET = "cad-shared-secret"


class CadReceiver:
    """A local CAD endpoint: answers with the scripted statuses, then 200; checks every signature."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({
                    "body": body, "delivery": self.headers["X-Flare-Delivery"],
                    "signed": verify_signature(SECRET, self.headers[TIMESTAMP_HEADER], body,
                                               self.headers[SIGNATURE_HEADER])})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/eido"


@pytest.fixture
def receiver_factory():
    started = []

    def start(statuses):
        r = CadReceiver(statuses)
        r.thread.start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.server.shutdown()
        r.server.server_close()


def cad_settings(url: str, attempts: int = 4) -> CadSettings:
    return CadSettings(webhook_url=url, webhook_secret=SecretStr(SECRET), max_attempts=attempts,
                       backoff_seconds=0.01, timeout_seconds=5)


def test_eido_document_maps_the_incident(engine, tmp_path):
    incident_id = make_incident(engine, tmp_path / "media")
    with Session(engine) as s:
        doc = build_eido(s, incident_id, CadSettings(agency_id="leeds.example"),
                         media_url=lambda i, item: f"https://flare.example/incidents/{i}/share/media/{item}")
    inc = doc["incidentComponent"][0]
    assert inc["incidentTrackingIdentifier"] == f"urn:flare:leeds.example:incident:{incident_id}"
    assert (inc["incidentTypeCommonRegistryText"], inc["incidentCommonPriorityNumber"]) == ("Fire", 1)
    loc, shared = doc["locationComponent"]
    assert inc["locationReference"] == [{"$ref": loc["$id"]}, {"$ref": shared["$id"]}]
    assert shared["locationByValue"]["geo"]["coordinates"] == [-1.54903, 53.80012]
    [photo] = doc["additionalDataComponent"]
    assert photo["additionalDataByReference"].startswith(f"https://flare.example/incidents/{incident_id}/share/media/")
    assert loc["locationByValue"]["geo"]["coordinates"] == [-1.5492, 53.7997]
    assert loc["locationByValue"]["civicAddress"]["locationDescription"] == "12 High Street, Leeds"
    assert doc["agencyComponent"][0]["agencyIdentifier"] == "leeds.example"
    note_ids = {n["$id"] for n in doc["notesComponent"]}
    assert {r["$ref"] for r in inc["notesReference"]} == note_ids and len(note_ids) == 3
    assert doc["flareExtension"]["times"]["created"] is not None
    assert json.loads(export_eido(engine, incident_id, CadSettings()))["incidentComponent"][0]["localIncidentIdentifier"] == str(incident_id)


def test_delivery_retries_5xx_and_every_attempt_is_signed_and_logged(engine, receiver_factory):
    incident_id = make_incident(engine)
    receiver = receiver_factory([503, 500])
    result = deliver_incident(engine, incident_id, cad_settings(receiver.url))
    assert result.ok and result.attempts == 3 and result.status_code == 200
    assert [r["signed"] for r in receiver.requests] == [True, True, True]
    assert len({r["delivery"] for r in receiver.requests}) == 1  # one delivery id across retries
    assert sha256_bytes(receiver.requests[-1]["body"]) == result.payload_sha256
    with Session(engine) as s:
        log = s.exec(select(CadDelivery).order_by(CadDelivery.attempt)).all()
        assert [(d.attempt, d.status_code, d.ok) for d in log] == [(1, 503, False), (2, 500, False), (3, 200, True)]
        assert {d.payload_sha256 for d in log} == {result.payload_sha256}
        note = s.exec(select(IncidentEvent).where(IncidentEvent.actor == "cad")).one()
        assert note.data["cad_delivery"] == "delivered" and note.data["attempts"] == 3
    assert verify_all(engine).ok


def test_client_error_is_not_retried_and_gives_up_after_max_attempts(engine, receiver_factory):
    incident_id = make_incident(engine)
    rejecting = receiver_factory([400])
    assert deliver_incident(engine, incident_id, cad_settings(rejecting.url)).attempts == 1
    failing = receiver_factory([502] * 10)
    result = deliver_incident(engine, incident_id, cad_settings(failing.url, attempts=3))
    assert (result.ok, result.attempts, result.status_code) == (False, 3, 502)


def test_unreachable_endpoint_is_logged_without_status(engine, receiver_factory):
    incident_id = make_incident(engine)
    r = receiver_factory([])
    url = r.url
    r.server.shutdown()
    r.server.server_close()
    result = deliver_incident(engine, incident_id, cad_settings(url, attempts=2))
    assert not result.ok and result.attempts == 2
    with Session(engine) as s:
        assert [d.status_code for d in s.exec(select(CadDelivery))] == [None, None]


def test_tampered_body_or_stale_timestamp_fails_signature_check():
    from evidence.cad import sign

    body = b'{"a":1}'
    sig = sign(SECRET, 1_000_000, body)
    assert verify_signature(SECRET, "1000000", body, sig, now=1_000_010)
    assert not verify_signature(SECRET, "1000000", b'{"a":2}', sig, now=1_000_010)
    assert not verify_signature(SECRET, "1000000", body, sig, now=1_000_000 + 3600)
    assert not verify_signature("other", "1000000", body, sig, now=1_000_010)
