"""The hand-checked rescue set: its label file (ids and labels only), its loader (texts read from
the public data, skipped where that data is absent) and its figures in `flare eval`."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from triage import datasets as ds
from triage.evaluation import rescue_handchecked_figures

DATASETS = Path(os.environ.get("FLARE_DATASETS",
                               Path(__file__).resolve().parents[2].parent / "shared" / "datasets"))


def _labels() -> list[dict]:
    with open(ds.RESCUE_HANDCHECKED, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_label_file_holds_ids_and_labels_only():
    rows = _labels()
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) <= {"id", "pool", "label", "person"}  # no text: the data's licence
        assert r["id"].split(":", 1)[0] in ds.RESCUE_HANDCHECKED_SOURCES
        assert r["label"] in ("rescue_now", "not")
        assert (r.get("person") in ("first", "relayed")) == (r["label"] == "rescue_now")
    assert sum(r["label"] == "rescue_now" for r in rows) >= 50


def test_figures_count_the_dispatch_queue_by_person():
    rows = [{"label": "rescue_now", "person": "relayed", "pool": "a"},
            {"label": "rescue_now", "person": "relayed", "pool": "a"},
            {"label": "rescue_now", "person": "first", "pool": "b"},
            {"label": "not", "person": None, "pool": "a"},
            {"label": "not", "person": None, "pool": "b"}]
    outputs = [SimpleNamespace(urgency=u) for u in ("critical", "none", "high", "high", "low")]
    f = rescue_handchecked_figures(rows, outputs)
    assert f["rescue_now"] == {"rows": 3, "to_dispatch": 2, "recall_to_dispatch": 0.6667,
                               "critical": 1, "triaged_none": 1}
    assert f["by_person"]["relayed"]["to_dispatch"] == 1
    assert f["by_person"]["first"]["recall_to_dispatch"] == 1.0
    assert (f["not"], f["not_sent_to_dispatch"], f["not_to_dispatch"]) == (2, 1, 0.5)
    assert f["by_pool"]["a"]["not_sent_to_dispatch"] == 1


@pytest.mark.skipif(not all((DATASETS / d).exists() for d in ds.RESCUE_HANDCHECKED_SOURCES.values()),
                    reason="the shared datasets are not on this machine")
def test_loader_reads_every_text_from_the_public_data(tmp_path):
    few = tmp_path / "few.jsonl"
    picked = {}
    for r in _labels():  # one row of each source keeps the test to the readers' time
        picked.setdefault(r["id"].split(":", 1)[0], r)
    few.write_text("".join(json.dumps(r) + "\n" for r in picked.values()))
    rows = ds.read_rescue_handchecked(DATASETS, few)
    assert [r["id"] for r in rows] == [r["id"] for r in picked.values()]
    assert all(r["text"].strip() for r in rows)
    assert {r["label"] for r in rows} <= {"rescue_now", "not"}
