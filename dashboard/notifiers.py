"""External notifiers for escalation steps: a signed webhook by default (pluggable registry)."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx

from dashboard.context import AppContext
from models.tables import Incident

log = logging.getLogger("flare.notify")


def notify_all(ctx: AppContext, incident: Incident, step: dict) -> list[dict]:
    """Send the step to every configured external notifier and return what happened to each."""
    url = ctx.settings.escalation_webhook_url
    if not url:
        log.warning("escalation step %s for incident %s: no external notifier configured",
                    step.get("action"), incident.id)
        return [{"notifier": "none", "ok": False, "error": "no external notifier configured"}]
    body = json.dumps({"incident_id": incident.id, "urgency": incident.urgency,
                       "category": incident.category, "action": step.get("action"),
                       "targets": step.get("targets", [])}, sort_keys=True).encode()
    secret = ctx.settings.escalation_webhook_secret.get_secret_value().encode()
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    try:
        r = httpx.post(url, content=body, timeout=5,
                       headers={"content-type": "application/json", "x-flare-signature": f"sha256={sig}"})
        return [{"notifier": "webhook", "ok": r.status_code < 300, "status": r.status_code}]
    except httpx.HTTPError as exc:
        log.warning("webhook notifier failed for incident %s: %s", incident.id, type(exc).__name__)
        return [{"notifier": "webhook", "ok": False, "error": type(exc).__name__}]
