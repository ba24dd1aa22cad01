"""Readers for the shared crisis datasets and the mapping of their labels onto Flare's schema.

The mapping is documented in triage/DATA.md. Only derived weights and metrics are committed;
these functions read the data in place from the shared datasets directory.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models.enums import Urgency

HANDLE_DIR = Path(__file__).parent / "data"
# Most urgent first, in the one order models.enums.Urgency defines (index == Urgency.rank).
URGENCIES = [u.value for u in sorted(Urgency, key=lambda u: u.rank)]
CATEGORIES = ["medical", "fire", "violence", "crime", "traffic", "hazard", "missing_person",
              "self_harm", "domestic_abuse", "other", "none"]
TREC_PRIORITIES = ["Critical", "High", "Medium", "Low"]
FIGURE_EIGHT_TARGETS = ["request", "medical_help", "search_and_rescue"]


@dataclass(slots=True)
class LabelledText:
    text: str
    urgency: str | None = None  # None: this source says nothing about urgency
    category: str | None = None
    silent: bool | None = None
    source: str = ""
    weight: float = 1.0


def read_handle(split: str) -> list[LabelledText]:
    """Flare's own messages-to-the-handle set: split is "train", "dev", "test" or "test2"."""
    rows = []
    with open(HANDLE_DIR / f"handle_{split}.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.append(LabelledText(r["text"], r["urgency"], r["category"],
                                         bool(r.get("silent", False)), source=f"handle_{split}"))
    return rows


def read_handle_translations() -> list[tuple[int, LabelledText]]:
    """Handle training posts translated by hand into romanised Hindi/Urdu and eight other
    languages (`handle_train_translated.jsonl`, DATA.md): each
    row with the index of the `handle_train` row it translates and that row's labels. Training
    data for the multilingual head only; no evaluation text is among the sources."""
    rows = []
    with open(HANDLE_DIR / "handle_train_translated.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.append((int(r["source_row"]), LabelledText(
                    r["text"], r["urgency"], r["category"], bool(r.get("silent", False)),
                    source="handle_train_translated")))
    return rows


def read_trecis(datasets_dir: Path) -> list[dict[str, str]]:
    path = Path(datasets_dir) / "trecis_priority" / "trecis_priority_train.csv"
    with open(path, encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if r["priority"] in TREC_PRIORITIES]


def read_figure_eight(datasets_dir: Path) -> list[dict]:
    """Rows with `message`, `split` and 0/1 ints per label; duplicate ids dropped."""
    base = Path(datasets_dir) / "figure_eight_disaster_response"
    with open(base / "official_split.csv", encoding="utf-8", newline="") as f:
        split = {r["id"]: r["split"] for r in csv.DictReader(f)}
    labels: dict[str, dict[str, int]] = {}
    with open(base / "disaster_categories.csv", encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            pairs = (p.rsplit("-", 1) for p in r["categories"].split(";"))
            # related=2 marks rows the annotators could not place; treated as related.
            labels[r["id"]] = {k: min(1, int(v)) for k, v in pairs}
    rows, seen = [], set()
    with open(base / "disaster_messages.csv", encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            if r["id"] in seen or r["id"] not in labels:
                continue
            seen.add(r["id"])
            rows.append({"id": r["id"], "message": r["message"], "genre": r["genre"],
                         "split": split.get(r["id"], "train"), **labels[r["id"]]})
    return rows


def read_crisislex(datasets_dir: Path) -> list[dict[str, str]]:
    path = Path(datasets_dir) / "crisislex_t26" / "crisislex_t26_labeled.csv"
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_idrisi(datasets_dir: Path, split: str) -> Iterator[dict]:
    path = Path(datasets_dir) / "idrisi_lmr_en" / f"idrisi_r_en_gold_{split}.jsonl"
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


# --- label mapping (see DATA.md) ---------------------------------------------------------

def figure_eight_urgency(row: dict) -> str:
    """Weak urgency: these are disaster-time messages, not posts to an emergency handle."""
    if not row.get("related"):
        return "none"
    if row.get("request") and (row.get("search_and_rescue") or row.get("medical_help")):
        return "high"
    if row.get("request"):
        return "medium"
    if row.get("direct_report"):
        return "low"
    return "none"  # news and commentary about a disaster ask nobody for help


def figure_eight_category(row: dict) -> str | None:
    if not row.get("related"):
        return "none"
    if row.get("fire"):
        return "fire"
    if row.get("missing_people"):
        return "missing_person"
    if row.get("medical_help"):
        return "medical"
    if row.get("security"):
        return "crime"
    if row.get("floods") or row.get("earthquake") or row.get("storm") or row.get("buildings"):
        return "hazard"
    return None  # related but no Flare category fits cleanly: left out of the category head


_CRISISLEX_EVENT_CATEGORY = {
    "Shootings": "violence", "Bombings": "violence", "Fire": "fire", "Wildfire": "fire",
    "Explosion": "fire", "Crash": "traffic", "Derailment": "traffic", "Floods": "hazard",
    "Earthquake": "hazard", "Typhoon": "hazard", "Collapse": "hazard", "Haze": "hazard",
    "Meteorite": "hazard",
}


def crisislex_labels(row: dict[str, str]) -> tuple[str | None, str | None]:
    """(urgency, category). Off-topic and sympathy tweets are clear `none` examples; informative
    eyewitness tweets give the incident category but say nothing reliable about urgency."""
    info = row["informativeness"]
    if info == "Not related":
        return "none", "none"
    if info == "Related - but not informative" or row["information_type"] == "Sympathy and support":
        return "none", "none"
    if info == "Related and informative":
        return None, _CRISISLEX_EVENT_CATEGORY.get(row["event_type"])
    return None, None


# A request TO a responder (someone asks for help now, for themselves or for others) against a
# report ABOUT an event (news, commentary, sympathy, appeals for donations, advice, weather).
TRECIS_ASKING = frozenset({"SearchAndRescue", "GoodsServices"})
TRECIS_ABOUT = frozenset({"News", "Sentiment", "Discussion", "Irrelevant", "Hashtags", "Factoid",
                          "MultimediaShare", "Donations", "Volunteer", "Official", "Weather",
                          "ContextualInformation", "Advice", "CleanUp", "ServiceAvailable",
                          "ThirdPartyObservation", "OriginalEvent", "NewSubEvent"})


def trecis_asking(categories: str) -> int | None:
    """1: asks for rescue, goods or services; 0: a report about the event; None: a first-person
    observation without a request (it may be a witness who needs help) or nothing known."""
    types = set(categories.split("|"))
    if types & TRECIS_ASKING:
        return 1
    if "FirstPartyObservation" in types or "MovePeople" in types or not types & TRECIS_ABOUT:
        return None
    return 0


def figure_eight_asking(row: dict) -> int | None:
    """1: a request; 0: unrelated, or related but neither a request nor a direct report (news,
    commentary); None: a direct report without a request."""
    if row.get("request"):
        return 1
    if row.get("direct_report"):
        return None
    return 0


# --- sets measured but split so one part is never read while tuning -----------------------

def held_out(key: str) -> bool:
    """The fixed half of a set that is only ever scored (never read while tuning): chosen by a
    hash of the row's id, so every machine splits the same way."""
    return hashlib.sha256(f"flare-report:{key}".encode()).digest()[0] % 2 == 0


def read_disaster_tweets(datasets_dir: Path) -> list[dict]:
    """The shared half of "NLP with Disaster Tweets": id, text, target (1 = a real disaster)."""
    path = Path(datasets_dir) / "disaster_tweets" / "disaster_tweets_train.csv"
    with open(path, encoding="utf-8", newline="") as f:
        return [{"id": r["id"], "text": r["text"], "target": int(r["target"])}
                for r in csv.DictReader(f)]


def read_rescue_requests(datasets_dir: Path) -> list[dict]:
    """Real requests to rescue people, mostly relayed or third-person: TREC-IS tweets labelled
    SearchAndRescue (priority above Low), and Figure Eight messages labelled both request and
    search_and_rescue from its validation and test splits (its train split is in training)."""
    rows = [{"id": f"trecis:{r['tweet_id']}", "text": r["text"], "source": "trecis"}
            for r in read_trecis(datasets_dir)
            if "SearchAndRescue" in r["categories"].split("|") and r["priority"] != "Low"]
    rows += [{"id": f"f8:{r['id']}", "text": r["message"], "source": "figure_eight"}
             for r in read_figure_eight(datasets_dir)
             if r["split"] in ("validation", "test") and r["request"] and r["search_and_rescue"]]
    return rows


RESCUE_HANDCHECKED = HANDLE_DIR / "rescue_handchecked.jsonl"
RESCUE_HANDCHECKED_SOURCES = {"f8": "figure_eight_disaster_response", "trecis": "trecis_priority",
                              "crisislex": "crisislex_t26"}


def read_rescue_handchecked(datasets_dir: Path, labels: Path = RESCUE_HANDCHECKED) -> list[dict]:
    """The hand-checked rescue set (DATA.md, "Rescue requests, hand-checked"; LABELLING.md):
    `rescue_handchecked.jsonl` holds only row ids and the labels read by hand (`rescue_now` with
    `person` first or relayed, or `not`); the texts are read here from the public data, as every
    other external set is. Each row: id, text, label, person (None for `not`), pool."""
    datasets_dir = Path(datasets_dir)
    with open(labels, encoding="utf-8") as f:
        wanted = [json.loads(line) for line in f if line.strip()]
    texts: dict[str, str] = {}
    prefixes = {w["id"].split(":", 1)[0] for w in wanted}
    if "f8" in prefixes:
        texts.update({f"f8:{r['id']}": r["message"] for r in read_figure_eight(datasets_dir)})
    if "trecis" in prefixes:
        texts.update({f"trecis:{r['tweet_id']}": r["text"] for r in read_trecis(datasets_dir)})
    if "crisislex" in prefixes:
        texts.update({f"crisislex:{r['tweet_id']}": r["text"] for r in read_crisislex(datasets_dir)})
    missing = [w["id"] for w in wanted if w["id"] not in texts]
    if missing:
        raise ValueError(f"{len(missing)} hand-checked rescue rows not in the datasets: {missing[:5]}")
    return [{"id": w["id"], "text": texts[w["id"]], "label": w["label"],
             "person": w.get("person"), "pool": w["pool"]} for w in wanted]
