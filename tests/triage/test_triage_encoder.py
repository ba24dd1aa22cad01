"""Encoder build-once under a lock, a reading's two halves, and a post's vectors never depend on
its neighbours."""
from __future__ import annotations

import threading

import numpy as np

from triage.encoder import INT8_FILE, MANIFEST_FILE, ensure_encoder_files, shared_encoder


def test_two_concurrent_builders_build_once(tmp_path):
    paths, errors = [], []

    def build():
        try:
            paths.append(ensure_encoder_files(tmp_path))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert paths[0] == paths[1] == tmp_path / INT8_FILE
    assert (tmp_path / MANIFEST_FILE).exists()
    assert not list(tmp_path.glob("*.tmp")), "no half-written files left behind"


def test_encoder_gives_unit_vectors(model_pipeline, triage_settings):
    from triage.encoder import default_cache_dir

    vectors = shared_encoder(default_cache_dir(triage_settings)).encode(["help", "", "a" * 3000])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_a_reading_is_the_sentence_embedding_then_the_surface_vector(model_pipeline, triage_settings):
    from triage.encoder import SENTENCE_DIM, default_cache_dir

    encoder = shared_encoder(default_cache_dir(triage_settings))
    texts = ["help", "my dad collapsed and isnt breathing, 7 Rowan Close", ""]
    readings = encoder.read(texts)
    assert readings.shape == (3, 2 * SENTENCE_DIM)
    assert (readings[:, :SENTENCE_DIM] == encoder.encode(texts)).all()
    for half in (readings[:, :SENTENCE_DIM], readings[:, SENTENCE_DIM:]):
        assert np.allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-3)
    # Another layer, not a copy: the two halves of one reading are far from equal.
    assert (np.abs(readings[:, :SENTENCE_DIM] - readings[:, SENTENCE_DIM:]).max(axis=1) > 0.05).all()


NEIGHBOURS = ["a", "lol what a day " * 20, "HELP!!! fire at 12 Oak St, kids inside", "ok",
              "the quick brown fox jumps over the lazy dog " * 6, "مساعدة", "🔥🔥🔥"]
POSTS = ["my dad collapsed and isnt breathing, 7 Rowan Close",
         "leg day destroyed me, call an ambulance",
         "35 ppl trapped in puthankavu, need urgent rescuing"]


def test_a_posts_vector_is_the_same_alone_and_in_any_batch(model_pipeline, triage_settings):
    from triage.encoder import default_cache_dir

    encoder = shared_encoder(default_cache_dir(triage_settings))
    encoder.forget()  # every vector below comes from a model run, not from memory
    alone = encoder.read(POSTS)  # both halves: the sentence and the surface vector
    for k in range(len(NEIGHBOURS)):
        encoder.forget()
        mixed = NEIGHBOURS[:k] + POSTS + NEIGHBOURS[k:]
        batch = encoder.read(mixed)[k:k + len(POSTS)]
        assert np.abs(batch - alone).max() < 1e-5
    for i, post in enumerate(POSTS):
        encoder.forget()
        assert np.abs(encoder.read([post])[0] - alone[i]).max() < 1e-5


def test_a_text_seen_again_costs_no_model_run_and_gets_the_same_vector(model_pipeline, triage_settings):
    from triage.encoder import SentenceEncoder, default_cache_dir

    cache = default_cache_dir(triage_settings)
    remembering = SentenceEncoder(cache, memo_size=3)
    first = remembering.encode(POSTS + [POSTS[0], POSTS[0]])
    assert remembering.runs == len(POSTS)  # the copies cost nothing
    assert (first[-1] == first[0]).all() and (first[-2] == first[0]).all()
    again = remembering.encode(list(reversed(POSTS)))
    assert remembering.runs == len(POSTS)
    assert (again == first[:len(POSTS)][::-1]).all()
    fresh = SentenceEncoder(cache)  # what a run gives, in another order and alone
    for i in reversed(range(len(POSTS))):
        assert (fresh.encode([POSTS[i]])[0] == first[i]).all()
    # Least recently used out: a fourth text pushes out the one used longest ago.
    remembering.encode(["a fourth text"])
    assert remembering.runs == len(POSTS) + 1
    remembering.encode([POSTS[2]])  # used longest ago ("again" read it first)
    assert remembering.runs == len(POSTS) + 2


def test_a_posts_triage_is_the_same_alone_and_in_a_batch(model_pipeline):
    from triage.base import TriageInput

    batched = model_pipeline.many([TriageInput(text=t) for t in NEIGHBOURS + POSTS])[-len(POSTS):]
    for post, in_batch in zip(POSTS, batched, strict=True):
        alone = model_pipeline(TriageInput(text=post))
        assert (alone.urgency, alone.confirmed, alone.needs_review) == (
            in_batch.urgency, in_batch.confirmed, in_batch.needs_review)
        for name in ("urgency", "category"):
            for key, value in alone.scores[name].items():
                assert abs(value - in_batch.scores[name][key]) < 1e-5
