"""The triage seam: a post goes in, a TriageOutput comes out, through small spaCy-style stages."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from models.domain import GeoPoint, LocationMention, TriageOutput


@dataclass(frozen=True, slots=True)
class SafetyRule:
    """A phrase pattern that raises a post to at least `urgency` (never lowers it)."""

    urgency: str
    category: str
    pattern: re.Pattern[str]


@dataclass(slots=True)
class TriageInput:
    text: str
    platform: str = ""
    is_dm: bool = False
    geo: GeoPoint | None = None
    author_location: str = ""


@dataclass(slots=True)
class TriageItem:
    """What flows through the stages; each stage reads and adds to it."""

    input: TriageInput
    text: str = ""  # normalised text
    language: str = "und"
    locations: list[LocationMention] = field(default_factory=list)
    urgency: str = "none"
    category: str = "none"
    confidence: float = 0.0
    silent: bool = False
    needs_review: bool = False
    confirmed: bool = False  # critical only: confident enough to page at once
    signals: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)
    undecided: list[str] = field(default_factory=list)  # what could not be decided, and why
    embedding: Any = None  # unit-normalised sentence vector from the classifier (for clustering)

    def output(self, model_version: str) -> TriageOutput:
        return TriageOutput(
            urgency=self.urgency, category=self.category, confidence=self.confidence,
            language=self.language, silent=self.silent, needs_review=self.needs_review,
            locations=self.locations, signals=self.signals,
            reasons=self.reasons + [f"undecided: {u}" for u in self.undecided],
            scores=self.scores, model_version=model_version, embedding=self.embedding,
            confirmed=self.confirmed,
        )


class Stage(Protocol):
    """A stage handles one item; it may also offer `batch(items)` (used by Pipeline.many) when
    doing many at once is cheaper, as for the encoder and the NER."""

    name: str

    def __call__(self, item: TriageItem) -> TriageItem: ...


class Pipeline:
    """Runs stages in order. A stage that raises marks the item for human review; it never
    loses the post or stops later stages."""

    def __init__(self, stages: list[Stage], model_version: str, notes: list[str] | None = None
                 ) -> None:
        self.stages = stages
        self.model_version = model_version
        # Said in every result, e.g. why the rules fallback is running instead of the models.
        self.notes = list(notes or [])

    def _new_item(self, inp: TriageInput) -> TriageItem:
        item = TriageItem(input=inp, text=inp.text if isinstance(inp.text, str) else "")
        item.reasons.extend(self.notes)
        return item

    def _run_one(self, stage: Stage, item: TriageItem) -> TriageItem:
        try:
            return stage(item)
        except Exception as exc:  # noqa: BLE001 - a broken stage must not drop the post
            item.needs_review = True
            item.undecided.append(f"{stage.name} failed ({type(exc).__name__})")
            return item

    def __call__(self, inp: TriageInput) -> TriageOutput:
        item = self._new_item(inp)
        for stage in self.stages:
            item = self._run_one(stage, item)
        return item.output(self.model_version)

    def many(self, inputs: list[TriageInput]) -> list[TriageOutput]:
        """Same results as calling the pipeline on each input, with batched stages batched.
        If a batch fails, that stage is retried item by item so one bad post cannot sink the
        others."""
        items = [self._new_item(i) for i in inputs]
        for stage in self.stages:
            batch = getattr(stage, "batch", None)
            if batch is not None and items:
                # Snapshot so a batch that fails half-way cannot leave duplicate reasons behind
                # when the stage is retried item by item.
                before = [_snapshot(it) for it in items]
                try:
                    items = batch(items)
                    continue
                except Exception:  # noqa: BLE001 - fall back to one at a time, isolating the failure
                    items = before
            items = [self._run_one(stage, it) for it in items]
        return [it.output(self.model_version) for it in items]


def _snapshot(item: TriageItem) -> TriageItem:
    """Copy of the containers stages add to (cheap: no deep copy of inputs or arrays)."""
    return replace(item, locations=list(item.locations), signals=dict(item.signals),
                   reasons=list(item.reasons), scores=dict(item.scores),
                   undecided=list(item.undecided))
