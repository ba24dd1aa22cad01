"""What reporters hear: receipts, acknowledgements, redirects, silent contacts, template files."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from esc_helpers import drain, make_user, new_post, triage
from sqlmodel import Session, select

from config import ServiceSettings
from flows import actions
from escalation import messages
from escalation.post_actions import echoes_reporter
from models.tables import OutboundMessage

WHEN = datetime(2026, 7, 1, 13, 2, tzinfo=UTC)  # 14:02 in London (BST)
SERVICE = ServiceSettings(name="Northshire Police", handle="nsp")


def test_public_receipt_is_minimal_and_local_time():
    reply = messages.receipt(SERVICE, "en", WHEN, silent=False, dm_possible=False)
    assert reply.kind == "public_reply"
    assert reply.text == "Your message to Northshire Police was received at 14:02. If you can, call 999."


def test_dm_preferred_and_language_chosen_with_english_fallback():
    assert messages.receipt(SERVICE, "es-ES", WHEN, False, True).kind == "dm"
    assert messages.receipt(SERVICE, "es-ES", WHEN, False, True).text.startswith("Su mensaje a Northshire")
    assert messages.receipt(SERVICE, "fr", WHEN, False, True).text.startswith("Votre message")
    assert messages.receipt(SERVICE, "und", WHEN, False, True).text.startswith("Your message")


@pytest.mark.parametrize("language", ["en", "es", "fr"])
def test_silent_contacts_get_dm_only_and_are_never_asked_to_call(language):
    for builder in (messages.receipt, messages.acknowledged):
        assert builder(SERVICE, language, WHEN, True, False) is None  # no DM: no public reply at all
        reply = builder(SERVICE, language, WHEN, True, True)
        assert reply.kind == "dm"
        assert "999" not in reply.text and "101" not in reply.text
    receipt = messages.receipt(SERVICE, language, WHEN, True, True).text
    assert any(w in receipt for w in ("YES", "SÍ", "OUI"))


def test_redirect_is_kind_and_gives_channels():
    reply = messages.redirect(SERVICE, "en", WHEN, dm_possible=False)
    assert reply.kind == "public_reply" and "101" in reply.text and "Thanks" in reply.text


def test_shipped_templates_validate():
    templates = messages.load_templates()
    assert set(templates.languages) >= {"en", "es"}


def test_per_service_override(tmp_path: Path):
    data = yaml.safe_load(messages.DEFAULT_TEMPLATES_FILE.read_text())
    data["services"] = {"nsp": {"en": {"acknowledged": "An operator at {service} has your message."}}}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    t = messages.load_templates(path)
    assert messages.acknowledged(SERVICE, "en", WHEN, False, True, t).text == (
        "An operator at Northshire Police has your message.")
    other = ServiceSettings(handle="other")
    assert messages.acknowledged(other, "en", WHEN, False, True, t).text == "A dispatcher has seen your message."


@pytest.mark.parametrize("change, reason", [
    (lambda d: d["languages"]["en"].pop("receipt"), "missing"),
    (lambda d: d["languages"]["en"].update(receipt="Hi {name}"), "unknown placeholder"),
    (lambda d: d["languages"]["en"].update(receipt_silent="Call {number}"), "must not be asked to call"),
    (lambda d: d["languages"].pop("en"), "English"),
    (lambda d: d.update(services={"nsp": {"en": {"acknowledged_silent": "ring {non_number}"}}}), "call"),
])
def test_bad_template_files_are_refused(tmp_path: Path, change, reason):
    data = yaml.safe_load(messages.DEFAULT_TEMPLATES_FILE.read_text())
    change(data)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=reason):
        messages.load_templates(path)


def test_echo_detection():
    posts = ["HELP!!! my dad has collapsed, not breathing"]
    assert echoes_reporter("We hear dad has collapsed, not breathing?", posts, []) is not None
    assert echoes_reporter("my dad — has collapsed", posts, []) is not None  # punctuation does not hide it
    assert echoes_reporter("Help is coming to your dad", posts, []) is None  # 3 shared words are fine
    assert echoes_reporter("crew to Kirkgate Market", [], ["Kirkgate Market"]) is not None
    assert echoes_reporter("crew on the way", [], ["Kirkgate Market"]) is None


def test_medium_and_above_get_one_receipt_and_reporters_see_status(ctx):
    medium = new_post(ctx, "there's a strong smell of gas in the stairwell")
    triage(ctx, medium, "medium", category="hazard")
    drain(ctx)
    with Session(ctx.engine) as s:
        [msg] = s.exec(select(OutboundMessage).where(OutboundMessage.post_id == medium)).all()
    assert (msg.purpose, msg.status) == ("receipt", "sent")
    assert "gas" not in msg.text and "stairwell" not in msg.text


def test_receipt_then_ack_each_exactly_once_per_reporter(ctx):
    alice, _ = make_user(ctx, "alice")
    outcome = triage(ctx, new_post(ctx, "someone collapsed in the park", author="r1"), "critical")
    follow_up = new_post(ctx, "still not moving", author="r2")
    actions.attach_post(ctx, follow_up, outcome.incident_id, alice)
    actions.acknowledge(ctx, outcome.incident_id, alice)
    actions.claim(ctx, outcome.incident_id, alice)
    drain(ctx)
    sent = [(r.recipient_id, r.text.split(".")[0]) for r in ctx.repliers["x"].sent]
    for author in {a for a, _ in sent}:
        mine = [t for a, t in sent if a == author]
        assert len(mine) == 2 and mine[1] == "A dispatcher has seen your message"
