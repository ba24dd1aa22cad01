"""The 3 a.m. console: queue rows that say what and where, honest supervisor numbers, paging."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from dashboard.routes.queue_lines import best_place, cad_lines, first_words
from models import Incident, TriageRecord
from models.enums import EventKind
from models.events import append_event
from tests.dashboard.conftest import drain, ingest, login, raw_post


@given(st.text(max_size=400))
def test_first_words_is_one_bounded_line_of_the_text(text):
    words, truncated = first_words(text)
    assert "\n" not in words and len(words) <= 110
    assert words == "" or words.split()[0] in text
    assert truncated == (words.split() != text.split())


def test_best_place_prefers_the_most_specific_mention_and_skips_profile_text():
    mentions = [{"text": "Leeds", "kind": "place", "confidence": 0.9, "lat": 53.8, "lon": -1.5},
                {"text": "my house, Leeds", "kind": "profile", "confidence": 1.0},
                {"text": "12 High St", "kind": "address", "confidence": 0.5, "lat": None}]
    assert best_place(mentions) == ("12 High St", False)
    assert best_place([mentions[0]]) == ("Leeds", True)
    assert best_place([mentions[1]]) == ("", False)
    assert best_place([]) == ("", False)


def test_queue_row_shows_words_address_kind_count_and_failed_pages(ctx, app, users):
    text = "help my dad collapsed not breathing at 12 High Street <b>now</b> please hurry we are upstairs"
    ingest(ctx, [raw_post("q1", text, author="r1")])
    drain(ctx)
    with Session(ctx.engine) as s:
        incident = s.exec(select(Incident)).one()
        record = s.exec(select(TriageRecord)).one()
        # What the full pipeline extracts from this text (the rule baseline used here finds no places).
        record.locations = [{"text": "12 High Street", "kind": "address", "source": "text", "lat": None,
                             "lon": None, "confidence": 0.85}]
        s.add(record)
        append_event(s, incident.id, EventKind.notification, "escalation",
                     {"action": "notify_external", "target": "duty_manager", "channel": "", "recipient": "",
                      "ok": False, "error": "no notifier configured for this target"})
        s.commit()
        line = cad_lines(s, [incident.id])[incident.id]
    assert line.first_words.startswith("help my dad collapsed") and line.words_truncated
    assert len(line.failed_pages) == 1
    html = login(app, "dispatcher").get("/queue").text
    row = html[html.index(f'data-incident="{incident.id}"'):]
    row = row[:row.index("</tr>")]
    assert "“help my dad collapsed not breathing at 12 High Street &lt;b&gt;now&lt;/b&gt;" in row
    assert "<b>now</b>" not in row
    assert "1 report" in row and "PAGE FAILED ×1" in row and "no notifier configured" in row
    where = row.split('class="where"')[1]
    assert "12 High Street" in where and "named, not on the map" in where and "location unknown" not in where
