"""Training and evaluation corpora assembled from the shared datasets and the handle set.

Deterministic: subsamples are chosen by a hash of the text, so `train` and `evaluate` rebuild
exactly the same splits on any machine.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from triage import datasets as ds
from triage.normalise import normalise_text

CRISISLEX_MAX = 6000  # enough `none`/incident examples; more only slows embedding
FIGURE_EIGHT_URGENCY_MAX = 8000
TREC_TEST_SPLIT = "trecis2019A_test"
TREC_LOW_AS_NONE_MAX = 4000


def _stable_fraction(text: str) -> float:
    return int(hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:8], 16) / 0xFFFFFFFF


@dataclass(slots=True)
class Corpus:
    handle_train: list[ds.LabelledText] = field(default_factory=list)
    handle_dev: list[ds.LabelledText] = field(default_factory=list)
    # Hand translations of handle_train rows (source row index, row): multilingual head only.
    handle_translated: list[tuple[int, ds.LabelledText]] = field(default_factory=list)
    external_urgency: list[ds.LabelledText] = field(default_factory=list)
    external_category: list[ds.LabelledText] = field(default_factory=list)
    trec_train: list[tuple[str, str]] = field(default_factory=list)  # (text, priority)
    trec_train_events: list[str] = field(default_factory=list)  # event of each trec_train row
    trec_train_types: list[str] = field(default_factory=list)  # information types, "|"-joined
    trec_train_ids: list[str] = field(default_factory=list)  # tweet id of each trec_train row
    trec_test: list[tuple[str, str]] = field(default_factory=list)
    f8: dict[str, list[dict]] = field(default_factory=dict)  # split → rows
    crisislex: list[str] = field(default_factory=list)  # the subsample's texts (all of them)
    # Tuning halves only (datasets.held_out picks the other halves, which are only scored).
    disaster_tweets: list[dict] = field(default_factory=list)
    rescue: list[dict] = field(default_factory=list)

    def all_texts(self) -> list[str]:
        texts = [r.text for r in self.handle_train + self.handle_dev]
        texts += [r.text for r in self.external_urgency + self.external_category]
        texts += [t for t, _ in self.trec_train + self.trec_test]
        texts += [r["message"] for rows in self.f8.values() for r in rows]
        texts += [r["text"] for r in self.disaster_tweets + self.rescue]
        texts += self.crisislex
        return list(dict.fromkeys(texts))


def build_corpus(datasets_dir: Path) -> Corpus:
    datasets_dir = Path(datasets_dir)
    corpus = Corpus(handle_train=ds.read_handle("train"), handle_dev=ds.read_handle("dev"),
                    handle_translated=ds.read_handle_translations())

    trec_rows = ds.read_trecis(datasets_dir)
    keep_low = TREC_LOW_AS_NONE_MAX / max(1, sum(r["priority"] == "Low" for r in trec_rows))
    for row in trec_rows:
        target = corpus.trec_test if row["source_split"] == TREC_TEST_SPLIT else corpus.trec_train
        target.append((row["text"], row["priority"]))
        if target is corpus.trec_train:
            corpus.trec_train_events.append(row["event"])
            corpus.trec_train_types.append(row["categories"])
            corpus.trec_train_ids.append(row["tweet_id"])
        # Low-priority disaster tweets (news, commentary, sympathy) are the bulk of a public
        # stream and ask nobody for help: `none` examples for urgency. Training events only.
        if (row["priority"] == "Low" and row["source_split"] != TREC_TEST_SPLIT
                and _stable_fraction(row["text"]) < keep_low):
            corpus.external_urgency.append(ds.LabelledText(row["text"], urgency="none",
                                                           source="trecis_low"))

    f8_rows = ds.read_figure_eight(datasets_dir)
    corpus.f8 = {s: [r for r in f8_rows if r["split"] == s] for s in ("train", "validation", "test")}
    f8_train = corpus.f8["train"]
    keep = FIGURE_EIGHT_URGENCY_MAX / max(1, len(f8_train))
    for r in f8_train:
        if _stable_fraction(r["message"]) < keep:
            corpus.external_urgency.append(ds.LabelledText(
                r["message"], urgency=ds.figure_eight_urgency(r), source="figure_eight"))
        category = ds.figure_eight_category(r)
        if category is not None:
            corpus.external_category.append(ds.LabelledText(
                r["message"], category=category, source="figure_eight"))

    crisislex = ds.read_crisislex(datasets_dir)
    keep = CRISISLEX_MAX / max(1, len(crisislex))
    for r in crisislex:
        if _stable_fraction(r["text"]) >= keep:
            continue
        corpus.crisislex.append(r["text"])
        urgency, category = ds.crisislex_labels(r)
        if urgency is not None:
            corpus.external_urgency.append(ds.LabelledText(r["text"], urgency=urgency,
                                                           source="crisislex"))
        if category is not None:
            corpus.external_category.append(ds.LabelledText(r["text"], category=category,
                                                            source="crisislex"))
    if (datasets_dir / "disaster_tweets").exists():
        corpus.disaster_tweets = [r for r in ds.read_disaster_tweets(datasets_dir)
                                  if not ds.held_out(r["id"])]
        corpus.external_urgency += [ds.LabelledText(r["text"], urgency="none", source="disaster_tweets")
                                    for r in corpus.disaster_tweets if r["target"] == 0]
    corpus.rescue = [r for r in ds.read_rescue_requests(datasets_dir) if not ds.held_out(r["id"])]
    # Real relayed and third-person requests for rescue (tuning half): urgency `high` examples,
    # the level a dispatcher must at least see them at ("35 ppl trapped in X, need rescuing").
    corpus.external_urgency += [ds.LabelledText(r["text"], urgency="high", source="rescue_requests")
                                for r in corpus.rescue]
    _normalise_all(corpus)
    return corpus


def _normalise_all(corpus: Corpus) -> None:
    """Models see training text exactly as they see live posts: after the normalise stage."""
    translated = [row for _, row in corpus.handle_translated]
    for row in (corpus.handle_train + corpus.handle_dev + translated + corpus.external_urgency
                + corpus.external_category):
        row.text = normalise_text(row.text)[0]
    corpus.trec_train = [(normalise_text(t)[0], p) for t, p in corpus.trec_train]
    corpus.trec_test = [(normalise_text(t)[0], p) for t, p in corpus.trec_test]
    for row in corpus.disaster_tweets + corpus.rescue:
        row["text"] = normalise_text(row["text"])[0]
    corpus.crisislex = [normalise_text(t)[0] for t in corpus.crisislex]
    for rows in corpus.f8.values():
        for row in rows:
            row["message"] = normalise_text(row["message"])[0]
