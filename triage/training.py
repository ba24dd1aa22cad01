"""Rebuilds every trained head from the shared datasets and the handle set.

    train(datasets_dir, out_dir, progress=True) -> dict

Steps: build the int8 encoder if missing → embed every text once (cached) → fit logistic-regression
heads → calibrate the urgency head (temperature on out-of-fold predictions) and pick its
recall-biased thresholds → write triage/weights/heads.{npz,json} and the postcode-area table.

The heads live in their own modules: `training_urgency` (the urgency head and the decision's
numbers), `training_gates` (literal, asking), `training_public` (category, TREC-IS, Figure
Eight), `multilingual_training` (the multilingual urgency head); `training_fit` holds what they
share.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from triage import datasets as ds
from triage.corpus import Corpus, build_corpus
from triage.embedcache import EmbeddingCache
from triage.encoder import ENCODER_NAME, SURFACE_LAYER, SentenceEncoder, default_cache_dir
from triage.heads import WEIGHTS_DIR, save_heads
from triage.lane_training import train_lane
from triage.locations.postcodes import build_area_table
from triage.multilingual_training import multilingual_head
from triage.training_fit import EXTERNAL_WEIGHT, URGENCY_EXTERNAL_WEIGHT
from triage.training_gates import asking_head, literal_head
from triage.training_public import category_head, figure_eight_head, trec_head
from triage.training_urgency import urgency_head

VERSION = "minilm-int8-surface2-lr-20"


def embed_corpus(corpus: Corpus, cache_dir: Path, progress: bool) -> dict[str, np.ndarray]:
    from rich.progress import Progress

    encoder = SentenceEncoder(cache_dir, threads=2)
    cache = EmbeddingCache(cache_dir, encoder)
    texts = corpus.all_texts()
    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("embedding texts", total=max(1, cache.count_missing(texts)))
        matrix = cache.embed(texts, lambda n: bar.advance(task, n))
        bar.update(task, completed=bar.tasks[0].total)
    return dict(zip(texts, matrix))


def train(datasets_dir: Path | str, out_dir: Path | str = WEIGHTS_DIR, progress: bool = True,
          cache_dir: Path | None = None) -> dict:
    """Rebuild all heads; returns a summary (also stored in heads.json)."""
    from rich.progress import Progress

    started = time.time()
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(_settings_or_none())
    corpus = build_corpus(Path(datasets_dir))
    emb = embed_corpus(corpus, cache_dir, progress)
    literal, literal_oof, literal_gates, literal_summary = literal_head(corpus, emb)
    asking, _, asking_gate, asking_summary = asking_head(corpus, emb)
    steps = [("urgency", lambda: urgency_head(corpus, emb, literal_oof, literal_gates, asking_gate)),
             ("literal", lambda: (literal, literal_summary)),
             ("asking", lambda: (asking, asking_summary)),
             ("category", lambda: (category_head(corpus, emb), {})),
             ("trec_priority", lambda: trec_head(corpus, emb))]
    steps += [(f"f8_{t}", lambda t=t: (figure_eight_head(corpus, emb, t), {}))
              for t in ds.FIGURE_EIGHT_TARGETS]
    steps.append(("urgency_multilingual", lambda: multilingual_head(corpus, cache_dir, progress)))
    heads, summary = [], {}
    with Progress(disable=not progress) as bar:
        task = bar.add_task("fitting heads", total=len(steps))
        for _name, fit in steps:
            head, info = fit()
            heads.append(head)
            summary.update(info)
            bar.advance(task)
    meta = {"version": VERSION, "encoder": ENCODER_NAME, "dim": 384, "surface_layer": SURFACE_LAYER,
            "training_rows": {"handle_train": len(corpus.handle_train),
                              "external_urgency": len(corpus.external_urgency),
                              "external_category": len(corpus.external_category),
                              "trec_train": len(corpus.trec_train),
                              "figure_eight_train": len(corpus.f8["train"]),
                              "disaster_tweets_tuning_half": len(corpus.disaster_tweets),
                              "rescue_requests_tuning_half": len(corpus.rescue),
                              "crisislex_subsample": len(corpus.crisislex)},
            "external_weight": {"urgency": URGENCY_EXTERNAL_WEIGHT, "category": EXTERNAL_WEIGHT},
            **summary}
    save_heads(heads, meta, out_dir)
    meta.update(train_lane(corpus, out_dir))
    build_area_table(out_dir / "uk_postcode_areas.json")
    meta["seconds"] = round(time.time() - started, 1)
    return meta


def _settings_or_none():
    try:
        from config import Settings

        return Settings()
    except Exception:  # noqa: BLE001 - training must also run without a configured deployment
        return None
