"""The demo's paging inbox: a local SMTP server (aiosmtpd) that keeps every page it receives.

`flare demo` starts it and routes the policy's external targets (duty supervisor, duty manager)
to e-mail addresses on it, so an unacknowledged incident really pages someone away from the
console out of the box: the pages land as files in a maildir (`<data dir>/paging-inbox`), one
message per file, readable with any mail client or `cat`. In production the same notifier talks
to a real relay (FLARE_NOTIFIERS__SMTP_HOST ...).
"""
from __future__ import annotations

import json
import mailbox
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

INBOX_DIR = "paging-inbox"
DEMO_ROUTES = {"duty_supervisor": ["email:duty-supervisor@flare.demo"],
               "duty_manager": ["email:duty-manager@flare.demo"]}


def paging_env(host: str, port: int) -> dict[str, str]:
    """Settings that send the demo's external pages by e-mail to the local inbox."""
    return {"FLARE_NOTIFIERS__SMTP_HOST": host, "FLARE_NOTIFIERS__SMTP_PORT": str(port),
            "FLARE_NOTIFIERS__SMTP_FROM": "flare@flare.demo", "FLARE_NOTIFIERS__SMTP_STARTTLS": "false",
            "FLARE_NOTIFIERS__ROUTES": json.dumps(DEMO_ROUTES)}


def start_inbox(host: str, port: int, maildir: Path) -> Controller:
    """Start the SMTP server in a background thread; the caller stops it with `.stop()`."""
    for sub in ("tmp", "new", "cur"):  # a maildir, also when the directory already exists
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(str(maildir)), hostname=host, port=port)
    controller.start()
    return controller


def serve_inbox(host: str, port: int, maildir: Path) -> None:
    controller = start_inbox(host, port, maildir)
    print(f"paging inbox on smtp://{host}:{port}, pages kept in {maildir}", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()


def received(maildir: Path) -> list[dict[str, str]]:
    """The pages in the inbox, oldest first: recipient, subject and body of each."""
    if not maildir.exists():
        return []
    out = []
    for message in mailbox.Maildir(str(maildir), create=False):
        body = message.get_payload(decode=True) or b""
        out.append({"to": str(message["To"]), "subject": str(message["Subject"]),
                    "body": body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)})
    return out
