"""External notifiers: signed webhook, SMTP email against a tiny local SMTP server, SMS gateway."""
from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest

from config import Settings
from escalation.notifiers import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EmailNotifier,
    NotifierRegistry,
    SmsGatewayNotifier,
    WebhookNotifier,
    build_registry,
    page_text,
    sign,
)
from models.seams import Notifier


class TinySmtpServer:
    """Speaks just enough SMTP for smtplib: records each message; can refuse a recipient."""

    def __init__(self, refuse: str = "") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.refuse = refuse
        self.received: list[dict] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        f = conn.makefile("rwb")

        def say(line: str) -> None:
            f.write(line.encode() + b"\r\n")
            f.flush()

        say("220 tiny ESMTP")
        mail: dict = {"rcpt": [], "data": ""}
        while line := f.readline().decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250 tiny")
            elif verb == "MAIL":
                say("250 ok")
            elif verb == "RCPT":
                addr = line.split(":", 1)[1].strip("<> ")
                if addr == self.refuse:
                    say("550 no such user")
                else:
                    mail["rcpt"].append(addr)
                    say("250 ok")
            elif verb == "DATA":
                say("354 go on")
                body = []
                while (data := f.readline().decode()) not in (".\r\n", ""):
                    body.append(data)
                mail["data"] = "".join(body)
                self.received.append(mail)
                say("250 queued as 42")
            elif verb == "QUIT":
                say("221 bye")
                break
            else:
                say("250 ok")
        conn.close()
        self.sock.close()


def test_every_notifier_satisfies_the_seam():
    assert isinstance(WebhookNotifier("http://x", "k"), Notifier)
    assert isinstance(EmailNotifier("h", 25, "from@x"), Notifier)
    assert isinstance(SmsGatewayNotifier("http://x", "t", "Flare"), Notifier)


def test_webhook_is_signed_over_timestamp_and_body():
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(204))
    receipt = WebhookNotifier("http://pager/hook", "secret", transport=transport).notify("duty", "subj", "body")
    assert receipt.ok
    [req] = seen
    assert req.headers[SIGNATURE_HEADER] == sign(b"secret", req.headers[TIMESTAMP_HEADER], req.content)
    assert req.headers[SIGNATURE_HEADER] != sign(b"other", req.headers[TIMESTAMP_HEADER], req.content)
    assert json.loads(req.content) == {"recipient": "duty", "subject": "subj", "body": "body"}


def test_webhook_failures_are_receipts_not_exceptions():
    def refuse(_r):
        raise httpx.ConnectError("connection refused")

    down = WebhookNotifier("http://pager/hook", "k", transport=httpx.MockTransport(refuse)).notify("d", "s", "b")
    assert not down.ok and "ConnectError" in down.error
    limited = WebhookNotifier("http://pager/hook", "k", transport=httpx.MockTransport(
        lambda r: httpx.Response(429, headers={"retry-after": "7"}))).notify("d", "s", "b")
    assert (limited.ok, limited.retryable, limited.retry_after_seconds) == (False, True, 7.0)
    bad = WebhookNotifier("http://pager/hook", "k", transport=httpx.MockTransport(
        lambda r: httpx.Response(400))).notify("d", "s", "b")
    assert (bad.ok, bad.retryable) == (False, False)


def test_email_goes_through_smtp():
    server = TinySmtpServer()
    receipt = EmailNotifier("127.0.0.1", server.port, "flare@example.org", starttls=False).notify(
        "duty@example.org", "CRITICAL #7", "Open the queue")
    assert receipt.ok
    server.thread.join(timeout=5)
    [mail] = server.received
    assert mail["rcpt"] == ["duty@example.org"]
    assert "Subject: CRITICAL #7" in mail["data"] and "Open the queue" in mail["data"]


def test_email_refused_recipient_and_unreachable_relay():
    server = TinySmtpServer(refuse="gone@example.org")
    refused = EmailNotifier("127.0.0.1", server.port, "flare@example.org", starttls=False).notify(
        "gone@example.org", "s", "b")
    assert not refused.ok and not refused.retryable and "refused" in refused.error
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    down = EmailNotifier("127.0.0.1", free_port, "flare@example.org", starttls=False, timeout=1).notify(
        "duty@example.org", "s", "b")
    assert not down.ok and down.retryable


def test_sms_gateway_posts_one_segment_with_bearer_token():
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, headers={"x-request-id": "s1"}))
    receipt = SmsGatewayNotifier("http://sms/send", "tok", "Flare", transport=transport).notify(
        "+447700900123", "x" * 300, "ignored body")
    assert receipt.ok and receipt.platform_message_id == "s1"
    [req] = seen
    payload = json.loads(req.content)
    assert req.headers["authorization"] == "Bearer tok"
    assert payload["to"] == "+447700900123" and len(payload["text"]) == 160


def test_registry_routes_targets_and_reports_unconfigured_channels():
    calls: list[tuple[str, str]] = []

    class Fake:
        def __init__(self, name: str, ok: bool = True) -> None:
            self.name, self.ok = name, ok

        def notify(self, recipient, subject, body):
            from models.domain import DeliveryReceipt

            calls.append((self.name, recipient))
            if self.name == "sms":
                raise RuntimeError("gateway bug")
            return DeliveryReceipt(ok=self.ok)

    reg = NotifierRegistry({"webhook": Fake("webhook"), "sms": Fake("sms")},
                           routes={"duty_manager": ["email:dm@example.org", "sms:+4477", "webhook"]})
    results = reg.notify(["duty_manager", "dispatchers"], "s", "b")
    assert [(r["target"], r["channel"], r["ok"]) for r in results] == [
        ("duty_manager", "email", False), ("duty_manager", "sms", False), ("duty_manager", "webhook", True),
        ("dispatchers", "webhook", True)]
    assert "not configured" in results[0]["error"] and "gateway bug" in results[1]["error"]
    assert calls == [("sms", "+4477"), ("webhook", "duty_manager"), ("webhook", "dispatchers")]
    empty = NotifierRegistry().notify(["duty_manager"], "s", "b")
    assert empty[0]["ok"] is False and "no notifier" in empty[0]["error"]


def test_registry_is_built_from_settings(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, notifiers={
        "webhook_url": "http://pager", "webhook_secret": "k", "smtp_host": "mail", "smtp_from": "f@x",
        "sms_gateway_url": "http://sms", "routes": {"duty_manager": ["sms:+4477"]}})
    reg = build_registry(settings)
    assert sorted(reg.notifiers) == ["email", "sms", "webhook"]
    assert reg.routes == {"duty_manager": ["sms:+4477"]}
    legacy = build_registry(Settings(_env_file=None, data_dir=tmp_path, escalation_webhook_url="http://old"))
    assert list(legacy.notifiers) == ["webhook"]
    assert build_registry(Settings(_env_file=None, data_dir=tmp_path)).notifiers == {}


def test_page_text_carries_no_personal_data():
    subject, body = page_text("Flare", 12, "critical", "self_harm", "notify_external", "https://flare/queue")
    assert "#12" in subject and "CRITICAL" in subject and "self harm" in subject
    assert "https://flare/queue" in body


@pytest.mark.parametrize("action", ["notify_supervisor", "notify_external"])
def test_page_text_names_the_action(action):
    subject, _ = page_text("Flare", 1, "high", "fire", action, "u")
    assert ("supervisor" in subject) == (action == "notify_supervisor")
