"""`flare triage`: the same pipeline the workers run, over JSON lines."""
from __future__ import annotations

import json
from typing import IO

from config import Settings
from models.domain import GeoPoint
from triage import TriageInput, build_pipeline


def parse_line(line: str) -> TriageInput:
    """Validate one input line; raises ValueError with a message meant for the user."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object")
    text = obj.get("text")
    if not isinstance(text, str):
        raise ValueError('missing "text" (a string)')
    geo = obj.get("geo")
    point = None
    if geo is not None:
        try:
            lat, lon = float(geo["lat"]), float(geo["lon"])
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError('"geo" must be {"lat": number, "lon": number}') from exc
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError('"geo" is out of range')
        point = GeoPoint(lat, lon)
    is_dm = obj.get("is_dm", False)
    if not isinstance(is_dm, bool):
        raise ValueError('"is_dm" must be true or false')
    platform = obj.get("platform", "")
    return TriageInput(text=text, platform=str(platform or ""), is_dm=is_dm, geo=point,
                       author_location=str(obj.get("author_location", "") or ""))


def _one(pipeline, inp: TriageInput) -> dict:
    try:
        return pipeline.many([inp])[0].as_dict()
    except Exception as exc:  # noqa: BLE001 - reported on this line's output, the run goes on
        return {"error": f"triage failed: {type(exc).__name__}"}


def triage_stream(settings: Settings, src: IO[str], dst: IO[str], kind: str = "auto", batch: int = 64) -> int:
    """Triage every line; an invalid line yields an error object for that line, never a crash."""
    pipeline = build_pipeline(settings, kind=kind)
    pending: list[tuple[int, TriageInput]] = []
    count = 0

    def flush() -> None:
        if not pending:
            return
        try:
            outputs = [out.as_dict() for out in pipeline.many([inp for _, inp in pending])]
        except Exception:  # noqa: BLE001 - one bad line must not cost the batch: retry each alone
            outputs = [_one(pipeline, inp) for _, inp in pending]
        for (n, _), out in zip(pending, outputs, strict=True):
            dst.write(json.dumps({"line": n, **out}, ensure_ascii=False) + "\n")
        dst.flush()
        pending.clear()

    for n, line in enumerate(src, start=1):
        if not line.strip():
            continue
        count += 1
        try:
            pending.append((n, parse_line(line)))
        except ValueError as exc:
            flush()  # keep output in input order
            dst.write(json.dumps({"line": n, "error": str(exc)}) + "\n")
            continue
        if len(pending) >= batch:
            flush()
    flush()
    return count
