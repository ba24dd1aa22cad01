"""External notifiers for escalation (models.seams.Notifier): signed webhook, email, SMS gateway.

A page says which incident needs attention and links to the dashboard. It never carries the
reporter's words, handle or location: pages travel through third-party systems (mail relays,
SMS gateways) and the dashboard is where personal data is shown, audited and access-controlled.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx

from config import Settings
from models.domain import DeliveryReceipt
from models.seams import Notifier

SIGNATURE_HEADER = "x-flare-signature"
TIMESTAMP_HEADER = "x-flare-timestamp"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>": the receiver can reject replays of old pages."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _http_receipt(response: httpx.Response) -> DeliveryReceipt:
    if response.status_code < 300:
        return DeliveryReceipt(ok=True, platform_message_id=response.headers.get("x-request-id", ""))
    retry_after = response.headers.get("retry-after")
    return DeliveryReceipt(
        ok=False, error=f"HTTP {response.status_code}",
        retryable=response.status_code >= 500 or response.status_code == 429,
        retry_after_seconds=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )


class WebhookNotifier:
    """POSTs a JSON page signed with HMAC-SHA256 (headers x-flare-timestamp, x-flare-signature)."""

    name = "webhook"

    def __init__(self, url: str, secret: str, timeout: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self.secret = secret.encode()
        self.timeout = timeout
        self.transport = transport

    def notify(self, recipient: str, subject: str, body: str) -> DeliveryReceipt:
        payload = json.dumps({"recipient": recipient, "subject": subject, "body": body},
                             sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {"content-type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self.secret, timestamp, payload)}
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                return _http_receipt(client.post(self.url, content=payload, headers=headers))
        except httpx.HTTPError as exc:
            return DeliveryReceipt(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])


class EmailNotifier:
    """Sends a plain-text email through an SMTP relay (STARTTLS unless told otherwise)."""

    name = "email"

    def __init__(self, host: str, port: int, sender: str, username: str = "", password: str = "",
                 starttls: bool = True, timeout: float = 5.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout

    def notify(self, recipient: str, subject: str, body: str) -> DeliveryReceipt:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = recipient
        msg["Subject"] = subject
        msg.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            return DeliveryReceipt(ok=False, error=f"recipient refused: {list(exc.recipients)}", retryable=False)
        except (smtplib.SMTPException, OSError) as exc:
            return DeliveryReceipt(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
        if refused:
            return DeliveryReceipt(ok=False, error=f"recipient refused: {sorted(refused)}", retryable=False)
        return DeliveryReceipt(ok=True, platform_message_id=str(msg.get("Message-ID", "")))


class SmsGatewayNotifier:
    """POSTs {to, from, text} with a bearer token to an HTTP SMS gateway."""

    name = "sms"
    MAX_LENGTH = 160  # one SMS segment: pages must arrive whole

    def __init__(self, url: str, token: str, sender: str, timeout: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url, self.token, self.sender = url, token, sender
        self.timeout = timeout
        self.transport = transport

    def notify(self, recipient: str, subject: str, body: str) -> DeliveryReceipt:
        text = subject if len(subject) <= self.MAX_LENGTH else subject[: self.MAX_LENGTH - 1] + "…"
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                r = client.post(self.url, json={"to": recipient, "from": self.sender, "text": text},
                                headers=headers)
                return _http_receipt(r)
        except httpx.HTTPError as exc:
            return DeliveryReceipt(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])


@dataclass
class NotifierRegistry:
    """The configured notifiers and which of them page which policy target."""

    notifiers: dict[str, Notifier] = field(default_factory=dict)
    routes: dict[str, list[str]] = field(default_factory=dict)

    def recipients_for(self, target: str) -> list[tuple[Notifier | None, str, str]]:
        """(notifier, channel, recipient) for a target; notifier None when the channel is not set up."""
        specs = self.routes.get(target)
        if specs is None:
            specs = ["webhook"] if "webhook" in self.notifiers else []
        out = []
        for spec in specs:
            channel, _, address = spec.partition(":")
            out.append((self.notifiers.get(channel), channel, address or target))
        return out

    def notify(self, targets: list[str], subject: str, body: str) -> list[dict]:
        """Page every recipient of every target; one result per attempt (never raises)."""
        results: list[dict] = []
        for target in targets:
            recipients = self.recipients_for(target)
            if not recipients:
                results.append({"target": target, "channel": "", "recipient": "", "ok": False,
                                "error": "no notifier configured for this target"})
            for notifier, channel, recipient in recipients:
                if notifier is None:
                    receipt = DeliveryReceipt(ok=False, error=f"channel {channel!r} is not configured",
                                              retryable=False)
                else:
                    try:
                        receipt = notifier.notify(recipient, subject, body)
                    except Exception as exc:  # noqa: BLE001 - one broken channel must not stop the rest
                        receipt = DeliveryReceipt(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
                results.append({"target": target, "channel": channel, "recipient": recipient,
                                "ok": receipt.ok, "error": receipt.error,
                                "message_id": receipt.platform_message_id})
        return results


def build_registry(settings: Settings) -> NotifierRegistry:
    cfg = settings.notifiers
    timeout = cfg.timeout_seconds
    notifiers: dict[str, Notifier] = {}
    webhook_url = cfg.webhook_url or settings.escalation_webhook_url
    if webhook_url:
        secret = (cfg.webhook_secret.get_secret_value()
                  or settings.escalation_webhook_secret.get_secret_value())
        notifiers["webhook"] = WebhookNotifier(webhook_url, secret, timeout)
    if cfg.smtp_host and cfg.smtp_from:
        notifiers["email"] = EmailNotifier(cfg.smtp_host, cfg.smtp_port, cfg.smtp_from, cfg.smtp_username,
                                           cfg.smtp_password.get_secret_value(), cfg.smtp_starttls, timeout)
    if cfg.sms_gateway_url:
        notifiers["sms"] = SmsGatewayNotifier(cfg.sms_gateway_url, cfg.sms_gateway_token.get_secret_value(),
                                              cfg.sms_sender, timeout)
    return NotifierRegistry(notifiers=notifiers, routes=dict(cfg.routes))


def page_text(service_name: str, incident_id: int, urgency: str, category: str, action: str,
              link: str) -> tuple[str, str]:
    """Subject and body of a page: incident number, urgency and a link; no personal data."""
    label = category.replace("_", " ") if category and category != "none" else "incident"
    subject = f"{service_name}: {urgency.upper()} {label} #{incident_id} not yet acknowledged"
    if action == "notify_supervisor":
        subject = f"{service_name}: supervisor needed, {urgency} {label} #{incident_id} unacknowledged"
    body = (f"{subject}.\n\nOpen the dispatch queue to acknowledge it: {link}\n\n"
            "This page carries no reporter details by design; they are in the dashboard.")
    return subject, body
