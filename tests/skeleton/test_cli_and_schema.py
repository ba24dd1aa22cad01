"""The command-line triage contract and the migrations matching the models."""
from __future__ import annotations

import io
import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings as hsettings, strategies as st
from sqlmodel import SQLModel

import models.tables  # noqa: F401
from config import Settings
from runtime.triage_cli import parse_line, triage_stream
from models.db import make_engine, upgrade


def test_migrations_create_exactly_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_triage_stream_answers_every_line_in_order(tmp_path):
    src = io.StringIO("\n".join([
        json.dumps({"text": "help my dad collapsed not breathing 12 High St Leeds"}),
        "{broken",
        json.dumps({"text": 5}),
        json.dumps({"text": "lovely weather", "geo": {"lat": 999, "lon": 0}}),
        json.dumps({"text": "fire in the kitchen", "is_dm": True, "platform": "x"}),
    ]) + "\n")
    dst = io.StringIO()
    triage_stream(Settings(_env_file=None, data_dir=tmp_path), src, dst, kind="rules")
    lines = [json.loads(x) for x in dst.getvalue().splitlines()]
    assert [x["line"] for x in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["urgency"] == "critical" and lines[0]["category"] == "medical"
    assert "error" in lines[1] and "error" in lines[2] and "out of range" in lines[3]["error"]
    assert set(lines[4]) >= {"urgency", "category", "confidence", "locations", "language", "silent", "reasons"}


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parse_line_never_crashes_on_arbitrary_input(line):
    try:
        parse_line(line)
    except ValueError:
        pass


def test_a_deeply_nested_line_is_an_error_for_that_line_and_earlier_results_are_kept(tmp_path):
    deep = '{"text": ' + "[" * 50_000 + "]" * 50_000 + "}"
    src = io.StringIO("\n".join([json.dumps({"text": "fire in the kitchen"}), deep,
                                 json.dumps({"text": "someone collapsed"})]) + "\n")
    dst = io.StringIO()
    assert triage_stream(Settings(_env_file=None, data_dir=tmp_path), src, dst, kind="rules") == 3
    lines = [json.loads(x) for x in dst.getvalue().splitlines()]
    assert [x["line"] for x in lines] == [1, 2, 3]
    assert "urgency" in lines[0] and "too deeply" in lines[1]["error"] and "urgency" in lines[2]


def test_one_line_the_pipeline_cannot_handle_does_not_cost_the_others(tmp_path, monkeypatch):
    from runtime import triage_cli

    real = triage_cli.build_pipeline

    def fragile(settings, kind):
        pipeline = real(settings, kind=kind)
        many = pipeline.many

        def many_failing_on_poison(inputs):
            if any(i.text == "poison" for i in inputs):
                raise RuntimeError("boom")
            return many(inputs)

        pipeline.many = many_failing_on_poison
        return pipeline

    monkeypatch.setattr(triage_cli, "build_pipeline", fragile)
    src = io.StringIO("\n".join(json.dumps({"text": t}) for t in ["fire here", "poison", "flood here"]) + "\n")
    dst = io.StringIO()
    triage_stream(Settings(_env_file=None, data_dir=tmp_path), src, dst, kind="rules")
    lines = [json.loads(x) for x in dst.getvalue().splitlines()]
    assert [x["line"] for x in lines] == [1, 2, 3]
    assert "urgency" in lines[0] and lines[1] == {"line": 2, "error": "triage failed: RuntimeError"}
    assert "urgency" in lines[2]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=30)


@hsettings(max_examples=200, deadline=None)
@given(obj=_json, depth=st.integers(0, 5000))
def test_parse_line_gives_a_value_error_or_an_input_for_any_json_at_any_depth(obj, depth):
    line = "[" * depth + json.dumps({"text": "x", "geo": obj, "is_dm": obj, "platform": obj}) + "]" * depth
    try:
        parse_line(line)
    except ValueError:
        pass
