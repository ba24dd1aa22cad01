"""The burst's targets (issue 15) and `flare bench burst`'s verdict on each, from its result.

Loaded by bench/burst.py by path, like its scenario; standard library only."""
from __future__ import annotations

TARGET_QUEUE_SECONDS = 2.0  # a lone cry for help in the dispatch queue, p99
# The targets this benchmark answers for (a handful of incidents: the burst's reports in at most
# this many, besides the single-report personal requests kept apart on purpose).
TARGET_RATE = {1: 160.0, 2: 300.0}  # posts/s acted on, by number of workers
TARGET_DECISION_P99_S = 5.0
TARGET_LONE_P99_S, TARGET_LONE_MAX_S = TARGET_QUEUE_SECONDS, 3.0
TARGET_SHARE_OF_STANDALONE = 0.5
TARGET_BURST_INCIDENTS = 10


def targets(result: dict) -> list[tuple[str, str, str]]:
    """(target, what was measured, MET / MISSED / NOT SHOWN) for each target. A rate above the
    arrival rate cannot be shown by this run: it is NOT SHOWN when acting kept pace with the
    arrivals (run again with fewer --seconds), MISSED when it did not."""
    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    out = []
    acted, arriving = result["triage_posts_per_second"], result["intake_posts_per_second"]
    kept_pace = result["pending_triage_at_end"] == 0 and acted >= 0.95 * arriving
    rate = TARGET_RATE.get(result["workers"], TARGET_RATE[2])
    out.append((f"acted on >= {rate:.0f} posts/s with {result['workers']} worker(s)", f"{acted} posts/s "
                f"(arriving {arriving}/s)", verdict(acted >= rate) if acted >= rate or arriving >= rate or not kept_pace
                else "NOT SHOWN"))
    out.append(("no backlog 30 s after the burst", f"{result['pending_triage_at_end']} pending",
                verdict(result["pending_triage_at_end"] == 0)))
    decision = result["model_decision"]
    out.append((f"model decision p99 <= {TARGET_DECISION_P99_S:.0f} s, every post", f"p99 {decision['p99_s']} s, "
                f"{decision['undecided']} undecided", verdict(not decision["undecided"] and (decision["p99_s"] or 0)
                                                              <= TARGET_DECISION_P99_S)))
    for label, key in (("lone critical posts (keyword pre-screen)", "lone_critical"),
                       ("lone critical posts the pre-screen misses", "quiet_critical")):
        one = result[key]
        # A post the model itself rates below high is a triage miss (flare eval), not a path delay.
        ok = one["queued"] + len(one["triaged_below_high"]) == one["count"] and \
            (one["p99_s"] or 0) <= TARGET_LONE_P99_S and (one["max_s"] or 0) <= TARGET_LONE_MAX_S
        out.append((f"{label} in the dispatch queue, p99 <= {TARGET_LONE_P99_S:.0f} s and max <= "
                    f"{TARGET_LONE_MAX_S:.0f} s", f"{one['queued']}/{one['count']}, p99 {one['p99_s']} s, "
                    f"max {one['max_s']} s, {len(one.get('hidden_in_other_incidents', []))} hidden in another "
                    f"incident", verdict(ok)))
    dup = result["duplicates"]
    out.append(("0 posts lost, 0 done twice", f"{result['posts_lost']} lost, {dup['messages_sent_twice']} "
                f"messages sent twice, {dup['incidents_published_twice']} incidents published twice",
                verdict(not result["posts_lost"] and not dup["messages_sent_twice"]
                        and not dup["incidents_published_twice"])))
    by_event = result.get("events")
    if by_event:
        # Each event of the scenario in its own handful: N events may take N handfuls, never more
        # for one of them.
        counts = {name: one["incidents"] - one["single_report_personal_requests"] for name, one in by_event.items()}
        out.append((f"each event's reports in a handful of incidents (<= {TARGET_BURST_INCIDENTS} per event, "
                    f"besides single-report personal requests kept apart)",
                    ", ".join(f"{name} {n} (largest {by_event[name]['largest']})" for name, n in counts.items()),
                    verdict(all(n <= TARGET_BURST_INCIDENTS for n in counts.values()))))
    else:
        events = result["burst_incidents"] - result["burst_single_report_personal_requests"]
        out.append((f"the burst in a handful of incidents (<= {TARGET_BURST_INCIDENTS}, besides single-report "
                    f"personal requests kept apart)", f"{events} (largest {result['largest_burst_incidents']})",
                    verdict(events <= TARGET_BURST_INCIDENTS)))
    mixed = result.get("mixed_incidents")
    if mixed is not None:
        # An incident must never hide another emergency inside it: two events' reports, or a lone
        # cry for help with anyone else's post.
        out.append(("no incident holds two emergencies (reports of two events, or a lone cry with others)",
                    f"{mixed['count']} such incident(s)", verdict(mixed["count"] == 0)))
    share, standalone = result["in_system_to_standalone"], result["standalone_pipeline_posts_per_second"]
    if share is not None:
        capped = arriving / standalone
        out.append((f"acted-on rate >= {TARGET_SHARE_OF_STANDALONE} of the standalone pipeline's in this run",
                    f"{share} (the arrivals alone allow at most {capped:.3f})",
                    verdict(share >= TARGET_SHARE_OF_STANDALONE) if capped >= TARGET_SHARE_OF_STANDALONE
                    or not kept_pace else "NOT SHOWN"))
    return out
