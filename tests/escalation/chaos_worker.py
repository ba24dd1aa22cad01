"""A Flare worker for the chaos tests: the real worker loop, with a replier that appends every
send to a file (the test process cannot share a Python object with this one). `--rules` triages
with the rules-only pipeline (no model to load)."""
from __future__ import annotations

import json
import os
import sys

from config import Settings
from flows.context import AppContext
from runtime.worker import run_worker
from models.domain import DeliveryReceipt
from triage.factory import rules_pipeline


class FileRecordingReplier:
    platform = "x"

    def __init__(self, path: str) -> None:
        self.path = path

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request) -> DeliveryReceipt:
        line = json.dumps({"recipient": request.recipient_id, "key": request.idempotency_key,
                           "kind": request.kind, "text": request.text, "pid": os.getpid()})
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return DeliveryReceipt(ok=True, platform_message_id=request.idempotency_key)


def main() -> None:
    ctx = AppContext.build(Settings(_env_file=None))
    ctx.repliers = {"x": FileRecordingReplier(sys.argv[1])}
    if "--rules" in sys.argv[2:]:
        ctx.pipeline = rules_pipeline()
    run_worker(ctx, preload=False)


if __name__ == "__main__":
    main()
