"""What a burst left behind, read back after the run (`flare bench burst`): for each post of the
scenario, when it was stored, decided, acted on and queued, and how grouping placed the burst.

Loaded by bench/burst.py by path, like its targets. Posts are followed by the scenario entry they
came from, through their platform and external id (`post_key`): a platform may give an author
another handle (Bluesky), and private messages are stored under ids of their own."""
from __future__ import annotations

import re
import runpy
import statistics
from collections import Counter
from datetime import UTC
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from grouping.rules import personal_request
from models.tables import Incident, IncidentPost, Post, TriageRecord

TARGETS = runpy.run_path(str(Path(__file__).resolve().parent / "_burst_targets.py"))
ONE_EVENT = "burst"  # the event of a scenario whose entries do not say which


def quantile(ordered: list[float], p: float) -> float | None:
    """The value at fraction `p` of `ordered` (sorted; p=1: the largest), rounded to the ms."""
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))], 3) if ordered else None


def post_key(item) -> tuple[str, str]:
    """The (platform, external id) a sandbox item is stored under by its platform's connector."""
    if item.is_dm and item.platform in ("x", "bluesky"):
        return item.platform, f"dm:{item.external_id}"
    return item.platform, item.external_id


def labelled_rows(session: Session, statement, labels: dict[tuple[str, str], str], only: set[str] | None = None):
    """Rows whose first two columns are a post's platform and external id, as (entry author, rest
    of the row): the entry each post came from, whatever handle its platform gave the author.
    `only`: these authors' posts alone (read by their external ids)."""
    if only is not None:
        wanted = [ext for (_, ext), author in labels.items() if author in only]
        statement = statement.where(Post.external_id.in_(wanted))
    for platform, external_id, *rest in session.exec(statement).all():
        author = labels.get((platform, external_id))
        if author is not None:
            yield author, rest


def lone_latencies(engine, arrivals: dict[str, float], labels: dict[tuple[str, str], str]) -> dict[str, dict]:
    """Per lone post: seconds from arrival to stored, triaged and in the dispatch queue.

    A cry is in the queue once it is acted on in a queued incident: the later of the two times
    (an incident queued before the cry came is not the cry). A cry in an incident with any other
    post is `hidden`: a dispatcher sees that incident's event, not the cry, so it never counts as
    queued (`set_summary`)."""
    def since(author: str, at) -> float | None:
        if at is None:
            return None
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return round(at.timestamp() - arrivals[author], 3)

    members = select(IncidentPost.incident_id, func.count().label("posts")).group_by(IncidentPost.incident_id).subquery()
    with Session(engine) as s:
        rows = list(labelled_rows(
            s, select(Post.platform, Post.external_id, Post.received_at, TriageRecord.created_at,
                      Incident.queued_at, TriageRecord.urgency, members.c.posts, Post.lane)
            .join(TriageRecord, TriageRecord.post_id == Post.id, isouter=True)
            .join(IncidentPost, IncidentPost.post_id == Post.id, isouter=True)
            .join(Incident, Incident.id == IncidentPost.incident_id, isouter=True)
            .join(members, members.c.incident_id == IncidentPost.incident_id, isouter=True), labels, set(arrivals)))
    out = {a: {"stored_s": None, "triaged_s": None, "queued_s": None, "urgency": None, "hidden": False,
               "lane": None} for a in arrivals}
    for author, (received, triaged, queued, urgency, posts, lane) in rows:
        in_queue = max(queued, triaged) if queued is not None and triaged is not None else None
        out[author] = {"stored_s": since(author, received), "triaged_s": since(author, triaged),
                       "queued_s": since(author, in_queue), "urgency": urgency, "hidden": (posts or 0) > 1,
                       "lane": lane}
    return out


def decision_latencies(engine, arrivals: dict[str, float], heard: dict[int, float],
                        labels: dict[tuple[str, str], str]) -> dict:
    """For every post: seconds from its arrival on the platform to its model decision (heard on
    the live feed), and to its stored triage record (acted on: incident, disposition, receipt)."""
    with Session(engine) as s:
        rows = list(labelled_rows(s, select(Post.platform, Post.external_id, Post.id, TriageRecord.created_at)
                                   .join(TriageRecord, TriageRecord.post_id == Post.id, isouter=True), labels))
    waits, acted, undecided = [], [], 0
    for author, (post_id, recorded) in rows:
        if author not in arrivals:
            continue
        if recorded is not None:
            recorded = recorded if recorded.tzinfo else recorded.replace(tzinfo=UTC)
            acted.append(recorded.timestamp() - arrivals[author])
        if post_id in heard:
            waits.append(heard[post_id] - arrivals[author])
        elif recorded is not None:
            waits.append(recorded.timestamp() - arrivals[author])
        else:
            undecided += 1
    waits.sort()
    acted.sort()
    return {"decided": len(waits), "undecided": undecided, "p50_s": quantile(waits, 0.5),
            "p90_s": quantile(waits, 0.9), "p99_s": quantile(waits, 0.99), "max_s": quantile(waits, 1.0),
            "acted": {"count": len(acted), "p50_s": quantile(acted, 0.5), "p90_s": quantile(acted, 0.9),
                      "p99_s": quantile(acted, 0.99), "max_s": quantile(acted, 1.0)}}


def incident_counts(engine, lone_authors: set[str], labels: dict[tuple[str, str], str],
                     event_of: dict[str, str]) -> dict:
    """How grouping placed the posts. The burst (every post that is no lone cry) as a whole, and
    each of its events: how many incidents hold its reports, besides the single-report personal
    requests kept apart on purpose. An incident that holds reports of two events, or a lone cry
    together with anyone else's post, hides one emergency inside another (`mixed_incidents`)."""
    with Session(engine) as s:
        rows = list(labelled_rows(s, select(Post.platform, Post.external_id, IncidentPost.incident_id, Post.text,
                                             IncidentPost.reason, TriageRecord.reasons)
                                   .join(IncidentPost, IncidentPost.post_id == Post.id)
                                   .join(TriageRecord, TriageRecord.post_id == Post.id, isouter=True)
                                   .order_by(Post.id), labels))
        incidents = s.exec(select(func.count(Incident.id))).one()
    rows = [(author, (iid, text, _grouping_reason(reason, notes))) for author, (iid, text, reason, notes) in rows]
    counts = count_incidents([(author, iid, text) for author, (iid, text, _) in rows], lone_authors, event_of)
    for name, reasons in why_apart(rows, lone_authors, event_of).items():
        counts["events"].setdefault(name, {})["opened_because"] = reasons
    # For each incident holding two emergencies, the posts of its smaller side and why each joined.
    for example in counts["mixed_incidents"]["examples"]:
        largest = max(example["reports"], key=example["reports"].get) if example["reports"] else ""
        example["minority"] = [
            {"author": author, "text": text[:160], "why": reason} for author, (iid, text, reason) in rows
            if iid == example["incident"] and (author in lone_authors or event_of.get(author) not in ("", largest))][:5]
    return counts | {"incidents_total": int(incidents)}


NEW_INCIDENT_NOTE = "clustering: new incident — "


def _grouping_reason(reason: str, notes: list | None) -> str:
    """Why grouping put a post where it is: the membership's reason, or for the post that opened
    its incident, grouping's note in its triage record (why it joined none)."""
    opened = [n[len(NEW_INCIDENT_NOTE):] for n in notes or [] if isinstance(n, str) and n.startswith(NEW_INCIDENT_NOTE)]
    return opened[-1] if opened and reason in ("", "opened by this post") else reason


def why_apart(rows, lone_authors: set[str], event_of: dict[str, str]) -> dict[str, list]:
    """For each event, why its incidents opened apart: the grouping reason stored with each
    incident's first report, numbers taken out, most common first (what to look at when an event
    does not collapse)."""
    first: dict[int, tuple[str, str]] = {}
    for author, (iid, _text, reason) in rows:
        first.setdefault(iid, (author, reason or ""))
    reasons: dict[str, Counter] = {}
    for author, reason in first.values():
        name = event_of.get(author)
        if author not in lone_authors and name:
            reason = re.sub(r"^possible duplicate of #\d+ \((.*)\): a person confirms$", r"possible duplicate, \1", reason)
            reason = re.sub(r"\s*\([^()]*\)", "", reason)  # "(cosine 0.38)", "(stamata)"
            gist = re.sub(r"#\d+|\d+(?:\.\d+)?", "N", reason)[:90]
            reasons.setdefault(name, Counter())[gist] += 1
    return {name: counts.most_common(6) for name, counts in reasons.items()}


def count_incidents(rows: list[tuple[str, int, str]], lone_authors: set[str], event_of: dict[str, str]) -> dict:
    """`incident_counts` from (entry author, incident id, text) rows in the order posts were stored."""
    burst = Counter(iid for author, iid, _ in rows if author not in lone_authors)
    lone = {iid for author, iid, _ in rows if author in lone_authors}
    openers: dict[int, str] = {}
    members: dict[int, list[str]] = {}
    for author, iid, post_text in rows:
        openers.setdefault(iid, post_text)
        members.setdefault(iid, []).append(author)
    # Single-report incidents opened by someone's own request for help (often with no place
    # given): kept apart on purpose, never absorbed into the event by wording.
    def personal_single(iid: int, n: int) -> bool:
        return n == 1 and personal_request(openers[iid])

    events: dict[str, dict] = {}
    for name in sorted({e for a, e in event_of.items() if e and a not in lone_authors}):
        own = Counter(iid for author, iid, _ in rows if event_of.get(author) == name)
        events[name] = {"reports_in_incidents": sum(own.values()), "incidents": len(own),
                        "single_report_personal_requests": sum(
                            1 for iid, n in own.items() if burst[iid] == 1 and personal_single(iid, n)),
                        "largest": [n for _, n in own.most_common(5)]}
    mixed = []
    for iid, authors in members.items():
        by_event = Counter(event_of.get(a) or "" for a in authors if a not in lone_authors)
        by_event.pop("", None)
        lone_here = [a for a in authors if a in lone_authors]
        if len(by_event) > 1 or (lone_here and len(authors) > 1):
            mixed.append({"incident": iid, "reports": dict(by_event), "lone": lone_here,
                          "others": len([a for a in authors if a not in lone_authors and not event_of.get(a)])})
    return {"burst_reports_in_incidents": sum(burst.values()),
            "burst_incidents": len(burst), "largest_burst_incidents": [n for _, n in burst.most_common(5)],
            "burst_single_report_personal_requests": sum(1 for iid, n in burst.items() if personal_single(iid, n)),
            "lone_incidents": len(lone), "lone_shared_with_burst": len(lone & set(burst)),
            "events": events, "mixed_incidents": {"count": len(mixed), "examples": mixed[:5]}}


def events_of(entries, lone_prefixes: tuple[str, ...]) -> dict[str, str]:
    """Entry author → the event it reports: its `event` ("" for none in particular), or ONE_EVENT
    for a scenario whose entries do not say. Lone cries are of no event."""
    return {e.author: "" if e.author.startswith(lone_prefixes) else getattr(e, "event", ONE_EVENT)
            for e in entries}


def intake_by_platform(engine, entries, arrivals: dict[str, float], labels: dict[tuple[str, str], str]) -> dict:
    """Per platform (private messages apart): posts replayed, how many were stored, and seconds
    from arrival to stored (p50, p99): which platform's intake fell behind."""
    with Session(engine) as s:
        stored = {author: rest[0] for author, rest in labelled_rows(
            s, select(Post.platform, Post.external_id, Post.received_at), labels)}
    out: dict[str, dict] = {}
    for e in entries:
        one = out.setdefault(f"{e.platform}{' DMs' if getattr(e, 'is_dm', False) else ''}", {"posts": 0, "waits": []})
        one["posts"] += 1
        at = stored.get(e.author)
        if at is not None and e.author in arrivals:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            one["waits"].append(at.timestamp() - arrivals[e.author])
    for one in out.values():
        waits = sorted(one.pop("waits"))
        one.update(stored=len(waits), p50_s=quantile(waits, 0.5), p99_s=quantile(waits, 0.99))
    return out


def sandbox_answers(served: list, since: float) -> dict:
    """How the sandbox (in this process) answered each platform's requests from `since` on: how many,
    and seconds from a request reaching its handler to its answer (p50, p99, max). The platforms'
    side of the intake: slow answers here hold back what the connectors can store."""
    out: dict[str, dict] = {}
    for platform in sorted({r.platform for r in served}):
        took = sorted(r.done - r.at for r in served if r.platform == platform and r.at >= since)
        if took:
            out[platform] = {"requests": len(took), "p50_s": quantile(took, 0.5), "p99_s": quantile(took, 0.99),
                             "max_s": quantile(took, 1.0)}
    return out


def set_summary(latencies: dict[str, dict]) -> dict:
    """Time to the dispatch queue for one set of lone critical posts."""
    measured = sorted(v["queued_s"] for v in latencies.values() if v["queued_s"] is not None and not v.get("hidden"))
    p99 = measured[max(0, int(len(measured) * 0.99 + 0.5) - 1)] if measured else None
    return {"count": len(latencies), "queued": len(measured),
            "hidden_in_other_incidents": sorted(a for a, v in latencies.items() if v.get("hidden")),
            "max_s": measured[-1] if measured else None, "p99_s": p99,
            "median_s": round(statistics.median(measured), 3) if measured else None,
            "within_target": sum(1 for v in measured if v <= TARGETS["TARGET_QUEUE_SECONDS"]),
            "triaged_below_high": sorted(a for a, v in latencies.items()
                                         if v["urgency"] not in (None, "critical", "high")),
            # The lane each waited in before its decision (intake: keywords or the lane reader).
            "lanes": dict(Counter(v.get("lane") or "unknown" for v in latencies.values()).most_common()),
            "each_s": latencies}
