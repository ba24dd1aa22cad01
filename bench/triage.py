"""Triage throughput on this machine: the full pipeline as N single-thread worker processes.

    main(argv) -> int     (wired as `flare bench triage`)

Each worker builds the pipeline once, warms it up, then for each chunk of its share of posts
triages the chunk with `Pipeline.many` and runs the bare encoder forward pass (tokenise + ONNX) on
the same normalised texts; the two are timed separately, so both rates come from the same run
under the same contention. A third leg runs the encoder the way it ran before triage became
neighbour-independent (padded batches of 32, one ONNX run per batch), so the cost of scoring each
post alone is a ratio measured in the same run. All workers start together (a barrier).
Prints a table and writes bench/results/triage.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import runpy
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "triage.json"
CHUNK = 256


HANDLE_POSTS, PUBLIC_POSTS = 1000, 4000


def _posts(n: int, datasets_dir: Path | None) -> list[str]:
    """A fixed mix, so the workload does not drift as the training set grows: 1,000 messages to
    the handle (our own set, most of them urgent, so the NER runs on them) and 4,000 real
    disaster-time tweets (TREC-IS, read in place, not stored), interleaved."""
    from triage import datasets as ds

    handle = [r.text for r in ds.read_handle("train") + ds.read_handle("dev")][:HANDLE_POSTS]
    public = []
    if datasets_dir and (datasets_dir / "trecis_priority").exists():
        public = [r["text"] for r in ds.read_trecis(datasets_dir)[:PUBLIC_POSTS]]
    texts = [t for pair in zip(public[::4], public[1::4], public[2::4], public[3::4], handle)
             for t in pair] or handle
    return [texts[i % len(texts)] for i in range(n)]


# `flare bench burst`'s defaults: its scenarios at the size the burst replays them
BURST_POSTS, BURST_UNRELATED, BURST_SECONDS, BURST_SEED = 16_000, 20, 60.0, 999


def _scenario_posts(n: int, scenario: Path) -> list[str]:
    """`n` posts spread evenly over a burst scenario (bench/scenarios/*.py, as `flare bench burst
    --scenario` replays it), in its order: that burst's mix of platforms, lengths and languages
    (two_events: about one post in nine in another language)."""
    entries = runpy.run_path(str(scenario))["burst_scenario"](BURST_POSTS, BURST_UNRELATED,
                                                             BURST_SECONDS, BURST_SEED)
    return [entries[i * len(entries) // n].text for i in range(n)]


def _padded_batches(encoder, texts: list[str], size: int = 32):
    """The former encoder path: length-sorted padded batches (a post's vector depended on its
    batch). Kept here only as the speed reference."""
    import numpy as np

    encodings = encoder.tokenizer.encode_batch([t if t.strip() else "." for t in texts])
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    for start in range(0, len(order), size):
        idx = order[start:start + size]
        width = max(len(encodings[i].ids) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            ids[row, :len(encodings[i].ids)] = encodings[i].ids
            mask[row, :len(encodings[i].ids)] = 1
        encoder.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask,
                                            "token_type_ids": np.zeros_like(ids)})


def _worker(index: int, texts: list[str], settings_kwargs: dict, barrier, results) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # one core per worker: BLAS helper threads would fight the encoder
    from config import Settings
    from triage.base import TriageInput
    from triage.encoder import default_cache_dir, shared_encoder
    from triage.factory import build_pipeline
    from triage.normalise import normalise_text

    settings = Settings(_env_file=None, **settings_kwargs)
    pipeline = build_pipeline(settings, kind="models")
    pipeline.many([TriageInput(text=t) for t in texts[:64]])  # load models, warm caches
    inputs = [TriageInput(text=t) for t in texts]
    encoder = shared_encoder(default_cache_dir(settings), 1)
    clean = [normalise_text(t)[0] for t in texts]
    encoder.encode(clean[:64])
    # Pipeline and bare-encoder chunks alternate, so both rates see the same contention from
    # the other worker and from anything else running on the machine.
    pipeline_seconds = encoder_seconds = padded_seconds = 0.0
    barrier.wait()
    for i in range(0, len(inputs), CHUNK):
        start = time.perf_counter()
        pipeline.many(inputs[i:i + CHUNK])
        encoder.forget()  # the pipeline just read these texts: the bare leg must run the model
        middle = time.perf_counter()
        encoder.encode(clean[i:i + CHUNK])
        third = time.perf_counter()
        _padded_batches(encoder, clean[i:i + CHUNK])
        pipeline_seconds += middle - start
        encoder_seconds += third - middle
        padded_seconds += time.perf_counter() - third
    results.put({"worker": index, "posts": len(texts),
                 "pipeline_posts_per_s": len(texts) / pipeline_seconds,
                 "encoder_posts_per_s": len(texts) / encoder_seconds,
                 "padded_batch_encoder_posts_per_s": len(texts) / padded_seconds,
                 "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run(workers: int, posts_per_worker: int, settings_kwargs: dict,
        datasets_dir: Path | None, scenario: Path | None = None) -> dict:
    n = posts_per_worker * workers
    texts = _scenario_posts(n, scenario) if scenario else _posts(n, datasets_dir)
    # fork, not spawn: `flare bench` loads this file with runpy, so a spawned child could not
    # import it by name. Nothing heavy is loaded (no ONNX, no threads) before the fork.
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, texts[i::workers], settings_kwargs, barrier, results))
             for i in range(workers)]
    for p in procs:
        p.start()
    rows = sorted((results.get(timeout=900) for _ in procs), key=lambda r: r["worker"])
    for p in procs:
        p.join()
    pipeline_rate = sum(r["pipeline_posts_per_s"] for r in rows)
    encoder_rate = sum(r["encoder_posts_per_s"] for r in rows)
    padded_rate = sum(r["padded_batch_encoder_posts_per_s"] for r in rows)
    return {
        "workers": workers, "threads_per_worker": 1, "posts": len(texts),
        "mix": scenario.stem if scenario else "handle+trecis",
        "pipeline_posts_per_s": round(pipeline_rate, 1),
        "bare_encoder_posts_per_s": round(encoder_rate, 1),
        "pipeline_to_encoder_ratio": round(pipeline_rate / encoder_rate, 3),
        "padded_batch_encoder_posts_per_s": round(padded_rate, 1),
        "alone_to_padded_batch_encoder_ratio": round(encoder_rate / padded_rate, 3),
        "pipeline_to_padded_batch_encoder_ratio": round(pipeline_rate / padded_rate, 3),
        "peak_rss_mb_per_worker": [round(r["peak_rss_mb"], 1) for r in rows],
        "per_worker": rows,
        "targets": {"posts_per_s": 1000, "ratio": 0.75,
                    "met": pipeline_rate >= 1000 or pipeline_rate / encoder_rate >= 0.75},
        "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flare bench triage", description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--posts-per-worker", type=int, default=3000)
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--model-cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"default {RESULTS} (triage-SCENARIO.json with --scenario)")
    parser.add_argument("--scenario", type=Path, default=None,
                        help="take the posts from a burst scenario (bench/scenarios/*.py) instead "
                             "of the fixed handle + TREC-IS mix")
    args = parser.parse_args(argv)
    out = args.out or (RESULTS.with_name(f"triage-{args.scenario.stem}.json") if args.scenario else RESULTS)
    settings_kwargs = {}
    if args.model_cache_dir:
        settings_kwargs["triage"] = {"model_cache_dir": str(args.model_cache_dir), "threads": 1}
    result = run(args.workers, args.posts_per_worker, settings_kwargs,
                 args.datasets if args.datasets.exists() else None, args.scenario)
    print(f"posts: {result['mix']}")
    print(f"{'measure':<34}{'value':>12}")
    for key in ("workers", "posts", "pipeline_posts_per_s", "bare_encoder_posts_per_s",
                "pipeline_to_encoder_ratio", "padded_batch_encoder_posts_per_s",
                "alone_to_padded_batch_encoder_ratio", "pipeline_to_padded_batch_encoder_ratio"):
        print(f"{key:<34}{result[key]:>12}")
    for r in result["per_worker"]:
        print(f"worker {r['worker']} peak RSS (MB){'':<14}{r['peak_rss_mb']:>12.1f}")
    print(f"target ≥1000 posts/s or ≥75% of encoder: {'met' if result['targets']['met'] else 'NOT met'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
