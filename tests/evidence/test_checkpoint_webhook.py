"""Each signed checkpoint also goes to the external witness; a failing witness loses nothing."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from sqlmodel import Session

from evidence.checkpoint import read_checkpoints, write_checkpoint
from evidence.keys import verify_signature
from evidence_test_helpers import make_incident


def _witness(status: int):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_checkpoint_is_posted_signed_to_the_webhook(engine, evidence_keys, tmp_path):
    incident_id = make_incident(engine)
    server, received = _witness(204)
    try:
        url = f"http://127.0.0.1:{server.server_port}/witness"
        result = write_checkpoint(engine, evidence_keys, tmp_path / "cp.jsonl", url)
    finally:
        server.shutdown()
    assert result.written and result.webhook_error == ""
    [record] = received
    sig = record.pop("sig")
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    assert verify_signature(evidence_keys.public_key, sig, body)
    with Session(engine):
        assert str(incident_id) in record["incidents"]


def test_failing_webhook_keeps_the_file_checkpoint(engine, evidence_keys, tmp_path):
    make_incident(engine)
    server, _ = _witness(500)
    try:
        result = write_checkpoint(engine, evidence_keys, tmp_path / "cp.jsonl",
                                  f"http://127.0.0.1:{server.server_port}/witness")
    finally:
        server.shutdown()
    assert result.written and "500" in result.webhook_error
    assert read_checkpoints(tmp_path / "cp.jsonl", evidence_keys.public_key).count == 1
