"""The incident flags a dispatcher must see, as the queue row, field feed and incident page show them
(the shared `incident_flags` macro)."""
from __future__ import annotations

from pathlib import Path

import jinja2

import dashboard
from models.tables import Incident

TEMPLATES = Path(dashboard.__file__).resolve().parent / "templates"


def _chips(incident: Incident) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    macro = env.get_template("_chips.html").module.incident_flags
    return str(macro(incident))


def test_every_flag_is_shown_and_none_without_flags():
    assert _chips(Incident(id=1, urgency="high")).strip() == ""
    html = _chips(Incident(id=2, urgency="critical", flags={
        "possible_duplicate_of": 7, "new_report": {"post_id": 3},
        "reporter_replied": {"post_id": 4, "question": "are you still in danger?", "answer": "yes"},
        "dm_unreachable": {"error": "403 DMs closed"}, "needs_review": True}))
    assert 'href="/incidents/7"' in html and "possible duplicate of #7" in html
    assert "NEW REPORT" in html and "REPORTER REPLIED: YES" in html
    assert "reporter cannot be reached by DM" in html and "REVIEW" in html
