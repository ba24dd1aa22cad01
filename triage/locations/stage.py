"""The location stage: geotag, text mentions (patterns + NER + local gazetteer), profile location."""
from __future__ import annotations

from pathlib import Path

from models.domain import LocationMention
from triage.base import TriageItem
from triage.locations.extract import extract_spans, get_nlp, needs_ner, ner_spans
from triage.locations.geocode import shared_gazetteer
from triage.locations.patterns import find_pattern_spans
from triage.memo import TextMemo

# Kinds whose text can never be placed offline: said once, in the reasons.
_NOT_OFFLINE = {"what3words": "what3words needs the online what3words service to resolve"}


NER_POLICIES = ("all", "urgent", "off")
NER_MEMO = 8192  # texts whose NER places are remembered, as the encoder remembers its vectors
_PRECISE = {"latlon", "what3words", "postcode", "address", "junction", "corner"}


def _wants_ner(item: TriageItem, policy: str, pattern_spans: list) -> bool:
    """The NER is the slowest step after the encoder (~1 ms/post) and adds only names the
    gazetteer lacks. "urgent" spends it where a dispatcher needs the place now: critical/high and
    silent posts that do not already give an address, postcode or coordinates."""
    if policy == "all":
        return True
    if policy == "urgent":
        if not (item.urgency in ("critical", "high") or item.silent):
            return False
        # A post that already gives an address, postcode or coordinates needs no NER guesswork.
        return not any(kind in _PRECISE for _, _, kind, _ in pattern_spans)
    return False


class LocationStage:
    name = "locations"

    def __init__(self, local_gazetteer: Path | None = None, use_ner: bool | str = True,
                 cache_dir: Path | None = None) -> None:
        self.local_gazetteer = local_gazetteer
        self.cache_dir = cache_dir  # where the compact place table is kept (model cache)
        policy = {True: "all", False: "off"}.get(use_ner, use_ner) if isinstance(use_ner, bool) else use_ner
        if policy not in NER_POLICIES:
            raise ValueError(f"use_ner must be a bool or one of {NER_POLICIES}")
        self.ner_policy = policy
        self._memo: TextMemo[list] = TextMemo(NER_MEMO)  # text → its NER places (_ner)

    def __call__(self, item: TriageItem) -> TriageItem:
        return self.batch([item])[0]

    def _ner(self, items: list[TriageItem], wanted: list[int]) -> dict[int, list]:
        """The NER's places in each wanted post's text, by index; a text read in the last
        NER_MEMO texts is not read again (triage.memo: its places depend on the text alone)."""
        found, missing = self._memo.lookup([items[i].text for i in wanted])
        places = {wanted[position]: spans for position, spans in found.items()}
        if missing:
            texts = list(missing)
            for text, doc in zip(texts, get_nlp().pipe(texts, batch_size=64), strict=True):
                spans = ner_spans(doc)
                self._memo.remember(text, spans)
                for position in missing[text]:
                    places[wanted[position]] = spans
        return places

    def batch(self, items: list[TriageItem]) -> list[TriageItem]:
        gazetteer = shared_gazetteer(self.local_gazetteer, self.cache_dir)
        known: list[list] = []
        patterns = [list(find_pattern_spans(item.text)) for item in items]
        for item in items:
            extra = [(s, e, "landmark", 0.85) for s, e, _ in gazetteer.scan_local(item.text)]
            extra += [(s, e, "place", 0.55) for s, e in gazetteer.scan_places(item.text)]
            known.append(extra)
        ner: dict[int, list] = {}
        if self.ner_policy != "off":
            # Under "urgent", a post whose places the gazetteer already knows skips the NER too.
            wanted = [i for i, it in enumerate(items)
                      if _wants_ner(it, self.ner_policy, patterns[i]) and needs_ner(it.text)
                      and (self.ner_policy == "all" or not known[i])]
            ner = self._ner(items, wanted)
        for i, item in enumerate(items):
            mentions: list[LocationMention] = []
            geo = item.input.geo
            if geo is not None:
                mentions.append(LocationMention(text=geo.place or f"{geo.lat:.5f},{geo.lon:.5f}",
                                                kind="geotag", source="geotag", lat=geo.lat,
                                                lon=geo.lon, confidence=0.95))
            spans = extract_spans(item.text, ner.get(i), known[i], patterns[i])
            for start, end, kind, confidence in spans:
                text = item.text[start:end]
                mention = LocationMention(text=text, kind=kind, source="text",
                                          confidence=confidence, start=start, end=end)
                hit = gazetteer.lookup(text, kind)
                if hit:
                    mention.lat, mention.lon = round(hit[0], 5), round(hit[1], 5)
                    item.reasons.append(f"location '{text}' ({kind}) placed via {hit[2]}")
                elif kind in _NOT_OFFLINE:
                    item.undecided.append(f"location '{text}': {_NOT_OFFLINE[kind]}")
                mentions.append(mention)
            profile = (item.input.author_location or "").strip()[:100]
            if profile:
                hit = gazetteer.lookup(profile, "place")
                mentions.append(LocationMention(
                    text=profile, kind="profile", source="profile",
                    lat=round(hit[0], 5) if hit else None, lon=round(hit[1], 5) if hit else None,
                    confidence=0.2 if hit else 0.1))
            if not any(m.source in ("geotag", "text") for m in mentions):
                item.undecided.append("location (no geotag and no place named in the text)")
            item.locations = mentions
        return items
