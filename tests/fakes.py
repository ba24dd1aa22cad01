"""Fakes of the seams (models/seams.py) that several test packages share."""
from __future__ import annotations

from models.domain import DeliveryReceipt


class AcceptingReplier:
    """Accepts every receipt instantly, so message jobs cost nothing in these tests."""

    platform = "x"

    def __init__(self) -> None:
        self.sent = 0

    def supports_dm(self, request) -> bool:
        return True

    def send(self, request) -> DeliveryReceipt:
        self.sent += 1
        return DeliveryReceipt(ok=True, platform_message_id=f"m{self.sent}")


class NoCheckpoints:
    """A CheckpointStore (connectors/runner.py) that keeps nothing: every poll reads from the start."""

    def load(self, name):
        return {}

    def save(self, name, cursor):
        pass
