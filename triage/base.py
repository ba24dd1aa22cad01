"""The triage seam: a post goes in, a TriageOutput comes out, through small spaCy-style stages."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from models.domain import GeoPoint, LocationMention, TriageOutput


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
    signals: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)
    undecided: list[str] = field(default_factory=list)  # what could not be decided, and why

    def output(self, model_version: str) -> TriageOutput:
        return TriageOutput(
            urgency=self.urgency, category=self.category, confidence=self.confidence,
            language=self.language, silent=self.silent, needs_review=self.needs_review,
            locations=self.locations, signals=self.signals,
            reasons=self.reasons + [f"undecided: {u}" for u in self.undecided],
            scores=self.scores, model_version=model_version,
        )


class Stage(Protocol):
    name: str

    def __call__(self, item: TriageItem) -> TriageItem: ...


class Pipeline:
    """Runs stages in order. A stage that raises marks the item for human review; it never
    loses the post or stops later stages."""

    def __init__(self, stages: list[Stage], model_version: str) -> None:
        self.stages = stages
        self.model_version = model_version

    def __call__(self, inp: TriageInput) -> TriageOutput:
        item = TriageItem(input=inp, text=inp.text or "")
        for stage in self.stages:
            try:
                item = stage(item)
            except Exception as exc:  # noqa: BLE001 - a broken stage must not drop the post
                item.needs_review = True
                item.undecided.append(f"{stage.name} failed ({type(exc).__name__})")
        return item.output(self.model_version)

    def many(self, inputs: list[TriageInput]) -> list[TriageOutput]:
        return [self(i) for i in inputs]
