"""Sentence embeddings with transformers + torch, following a sentence-transformers folder's own config.

Inference only, no Spark and no ``sentence_transformers`` import: :func:`load_encoder` loads the folder
that :func:`~smart_spark.embed.model_folder.read_spec` describes, on the device and in the precision of
:mod:`smart_spark.embed.device`, and :meth:`Encoder.encode` returns the same vectors as
sentence-transformers' ``encode`` (to ~1e-6 in float32 on CPU). The modules after the transformer
(Pooling, Dense, Normalize) are :mod:`smart_spark.embed.head`.

A vector does not depend on the rows it is embedded with, in either precision. float32 passes are
padded to their longest row and agree across batchings to ~1e-7. bfloat16 arithmetic depends on the
pass's shape (the kernels' blocking follows it and bfloat16 rounding amplifies the difference, up to
~1e-3 per coordinate), so a bfloat16 encoder runs passes of fixed shapes: a row's length bucket fixes the
padded width and the row count (:func:`~smart_spark.embed.batches.fixed_shape_batches`), whatever else
is embedded (0.0 difference measured across company, chunking and thread counts). The shapes follow
``batch_size`` and ``max_tokens``, so the same texts give the same bfloat16 vectors under the same
settings; the cache key of a bfloat16 encoder ends in ``/bf16-fixed``
(:func:`~smart_spark.embed.model_folder.model_id`).

Batching (:meth:`Encoder.encode`): rows sorted by token count, longest first; a forward pass holds at most
``batch_size`` rows and at most ``max_tokens`` padded tokens (rows times its longest row), so short texts
run in wide batches and long ones in narrow batches of bounded memory.

The names that moved to :mod:`~smart_spark.embed.model_folder` and :mod:`~smart_spark.embed.device` are
importable from here too, as before.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from smart_spark.embed.batches import Pass, fixed_shape_batches, pad_rows, token_passes
from smart_spark.embed.device import (
    PRECISIONS,
    cpu_has_native_bf16,
    resolve_device,
    resolve_precision,
    set_cpu_threads,
)
from smart_spark.embed.head import Dense, apply_head
from smart_spark.embed.model_folder import (
    ModelSpec,
    default_model_path,
    effective_max_length,
    embedding_dim,
    model_id,
    output_dim,
    read_spec,
    resolve_model_path,
    spec_model_id,
)
from smart_spark.errors import SmartError

__all__ = [
    "PRECISIONS", "Encoder", "ModelSpec", "Tokens", "cpu_has_native_bf16", "default_model_path",
    "effective_max_length", "embedding_dim", "has_chat_template", "load_encoder", "load_tokenizer",
    "model_id", "read_spec", "resolve_device", "resolve_model_path", "resolve_precision", "set_cpu_threads",
    "token_counts",
]

_ENCODERS: dict[tuple[str, str, int, str], Encoder] = {}
#: Loads one encoder or tokenizer at a time: engines that run Python UDFs in threads of one process (Sail)
#: would otherwise load twice, and transformers' lazy imports are not thread-safe.
_LOAD_LOCK = threading.RLock()


@dataclass(frozen=True)
class Tokens:
    """A tokenizer's output for n texts: ``encoded`` (token-id lists per key), the ``keys`` the model's
    forward takes, ``lengths`` (n,) int64 token counts after truncation, and ``untruncated`` (n,) int64
    token counts before it (what :func:`token_counts` gives)."""

    encoded: Any
    keys: list[str]
    lengths: np.ndarray
    untruncated: np.ndarray


def load_encoder(
    model: str | None,
    *,
    device: str = "auto",
    max_length: int = 256,
    cpu_threads: int | None = None,
    precision: str = "float32",
) -> Encoder:
    """The :class:`Encoder` for ``model`` (``None`` = bundled all-MiniLM-L6-v2), loaded once per process.

    Cached by (folder, resolved device, max_length, resolved precision), so a reused Spark Python worker
    loads it once. On CPU, torch's threads are set by :func:`set_cpu_threads` (``cpu_threads``) on every
    call. ``precision``: ``float32``, ``bfloat16`` or ``auto`` (:func:`resolve_precision`).
    """
    resolved = resolve_device(device)
    if resolved == "cpu":
        set_cpu_threads(cpu_threads)
    dtype = resolve_precision(precision, resolved)
    path = resolve_model_path(model)
    key = (path, resolved, int(max_length), dtype)
    with _LOAD_LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            encoder = Encoder(read_spec(model), device=resolved, max_length=max_length, precision=dtype)
            _ENCODERS[key] = encoder
    return encoder



class Encoder:
    """A loaded text encoder. Use :func:`load_encoder` (cached) rather than constructing one directly.

    Attributes: ``dim`` (embedding width), ``model_id`` (:func:`model_id`), ``device`` (torch device
    string), ``max_length`` (effective truncation length, tokens), ``precision`` (``float32`` or
    ``bfloat16``), ``spec`` (:class:`ModelSpec`).
    """

    def __init__(
        self, spec: ModelSpec, *, device: str = "cpu", max_length: int = 256, precision: str = "float32",
        fixed_shapes: bool | None = None,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no tqdm bar ("Loading weights") in a job's log
        self.spec = spec
        self.device = device
        self.max_length = min(int(max_length), spec.max_seq_length)
        if self.max_length < 1:
            raise SmartError(f"--max-length {max_length}: must be at least 1")
        self.precision = resolve_precision(precision, device)
        #: Passes of fixed shapes per length bucket (default: in bfloat16), so a vector does not depend on
        #: the rows it is embedded with (module docstring of :mod:`smart_spark.embed.batches`).
        self.fixed_shapes = self.precision == "bfloat16" if fixed_shapes is None else bool(fixed_shapes)
        self.model_id = spec_model_id(spec, self.max_length, self.precision)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(spec.transformer_path, **spec.tokenizer_kwargs)
            model = AutoModel.from_pretrained(spec.transformer_path, dtype=torch.float32)
            self.model = model.to(device).eval()
        except Exception as e:  # any loading failure means the folder is not a usable model
            raise SmartError(f"--model {spec.path}: cannot load the transformer: {e}") from e
        if spec.do_lower_case:
            self._lowercase_tokenizer()
        self._forward_keys = set(inspect.signature(self.model.forward).parameters)
        # pad values and side, read once: the tokenizer is then used by one thread at a time
        self._padding = ({"input_ids": self.tokenizer.pad_token_id or 0,
                          "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0) or 0},
                         getattr(self.tokenizer, "padding_side", "right") == "left")
        self._dense = [Dense(m[1]).to(device).eval() for m in spec.modules if m[0] == "dense"]
        self._prompt_length = self._measure_prompt() if spec.prompt else 0
        self.dim = output_dim(spec, int(self.model.config.hidden_size))

    def _lowercase_tokenizer(self) -> None:
        """Prepend a Lowercase normalizer, as sentence-transformers does for ``do_lower_case``."""
        from tokenizers.normalizers import Lowercase
        from tokenizers.normalizers import Sequence as NormalizerSequence

        backend = self.tokenizer.backend_tokenizer
        current = backend.normalizer
        if isinstance(current, Lowercase) or (
            isinstance(current, NormalizerSequence) and any(isinstance(n, Lowercase) for n in current)
        ):
            return
        rest = list(current) if isinstance(current, NormalizerSequence) else [current] if current else []
        backend.normalizer = NormalizerSequence([Lowercase(), *rest])

    def _measure_prompt(self) -> int:
        """Tokens of the default prompt (with leading special tokens, without a trailing special token)."""
        ids = self.tokenizer(self.spec.prompt, truncation=True, max_length=self.max_length)["input_ids"]
        return len(ids) - (1 if ids and ids[-1] in self.tokenizer.all_special_ids else 0)

    def encode(self, texts: Sequence[str], batch_size: int = 64, max_tokens: int | None = None) -> np.ndarray:
        """Embed ``texts``: a (n, dim) float32 array, row i for ``texts[i]``.

        Texts are tokenized once (truncated to ``max_length`` tokens) and sorted by token count (longest
        first); each forward pass takes at most ``batch_size`` rows and at most ``max_tokens`` padded
        tokens (:func:`token_batches`; ``None`` = rows only). Returned in input order.
        A ``None`` or non-string text is a :class:`SmartError`.

        >>> load_encoder(None).encode(["Translate to French: the cat sleeps."]).shape
        (1, 384)
        """
        return self.embed_tokens(self.tokenize(texts), batch_size=batch_size, max_tokens=max_tokens)

    def encode_stream(self, chunks: Iterable[Sequence[str]], batch_size: int = 64,
                      max_tokens: int | None = None, *, prefetch: bool | None = None,
                      stats: dict[str, float] | None = None) -> Iterator[np.ndarray]:
        """:meth:`encode` of each chunk of texts in turn, lazily: one (len(chunk), dim) array per chunk.

        With ``prefetch`` (default: on a CUDA device) the next chunk is tokenized in a thread while this
        one's forward passes run: on a GPU a small encoder waits for the tokenizer otherwise (the
        tokenizer's Rust code releases the GIL). The vectors are those of :meth:`encode`. ``stats``: as
        :meth:`embed_tokens` says, plus ``tokenize_s``.

        >>> [e.shape for e in load_encoder(None).encode_stream([["a", "b"], ["c"]])]
        [(2, 384), (1, 384)]
        """
        for embeddings, _ in self.encode_stream_counted(chunks, batch_size, max_tokens, prefetch=prefetch,
                                                        stats=stats):
            yield embeddings

    def encode_stream_counted(self, chunks: Iterable[Sequence[str]], batch_size: int = 64,
                              max_tokens: int | None = None, *, prefetch: bool | None = None,
                              stats: dict[str, float] | None = None,
                              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:meth:`encode_stream`, with each chunk's untruncated token counts: ``(embeddings, counts)``
        pairs, (len(chunk), dim) float32 and (len(chunk),) int64, from the same tokenizer pass.

        >>> [c.tolist() for _, c in load_encoder(None).encode_stream_counted([["a b", "c"]])]
        [[4, 3]]
        """
        if prefetch is None:
            prefetch = self.device.startswith("cuda")

        def tokenize(texts: Sequence[str]) -> Tokens:
            started = time.perf_counter()
            tokens = self.tokenize(texts)
            if stats is not None:
                stats["tokenize_s"] = stats.get("tokenize_s", 0.0) + time.perf_counter() - started
            return tokens

        def embed(tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
            return self.embed_tokens(tokens, batch_size=batch_size, max_tokens=max_tokens,
                                     stats=stats), tokens.untruncated

        if not prefetch:
            for texts in chunks:
                yield embed(tokenize(texts))
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as pool:
            pending = None
            for texts in chunks:
                upcoming = pool.submit(tokenize, texts)
                if pending is not None:
                    yield embed(pending.result())
                pending = upcoming
            if pending is not None:
                yield embed(pending.result())

    def tokenize(self, texts: Sequence[str]) -> Tokens:
        """The tokenizer's output for ``texts`` (default prompt prepended, truncated to ``max_length``),
        with each row's token count. A ``None`` or non-string text is a :class:`SmartError`."""
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise SmartError(f"cannot embed text #{i}: expected a string, got {text!r}")
        if len(texts) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return Tokens({}, [], empty, empty)
        inputs = [self.spec.prompt + t for t in texts] if self.spec.prompt else list(texts)
        encoded, untruncated = self._token_ids(inputs)
        keys = [k for k in encoded.keys() if k in self._forward_keys]
        lengths = np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64, count=len(texts))
        if untruncated is None:  # a slow (Python) tokenizer: a second, untruncated pass
            untruncated = token_counts(self.spec.path, texts)
        return Tokens(encoded, keys, lengths, untruncated)

    def _token_ids(self, inputs: list[str]) -> tuple[dict[str, list[list[int]]], np.ndarray | None]:
        """Token-id lists per model input (``input_ids``, and ``token_type_ids`` where the tokenizer
        returns them), truncated to ``max_length``: what ``tokenizer(inputs, truncation=True,
        max_length=...)`` returns, from the Rust tokenizer's ``encode_batch`` directly when there is one
        (the transformers call around it adds about 40%: 1.31 s against 0.94 s for 20,000 texts).
        Also the (n,) untruncated token counts, from the same pass: a truncated Rust encoding keeps the
        cut-off rest as ``overflowing`` pieces of at most ``max_length`` tokens, each with the special
        tokens added again (stride 0: no overlap); None for a slow tokenizer."""
        tok = self.tokenizer
        backend = tok.backend_tokenizer if getattr(tok, "is_fast", False) else None
        if backend is None:
            ids = tok(inputs, truncation=True, max_length=self.max_length, return_attention_mask=False)
            return dict(ids), None
        backend.no_padding()
        backend.enable_truncation(self.max_length, stride=0, strategy="longest_first",
                                  direction=getattr(tok, "truncation_side", "right"))
        encodings = backend.encode_batch(inputs)
        out = {"input_ids": [e.ids for e in encodings]}
        if "token_type_ids" in tok.model_input_names:
            out["token_type_ids"] = [e.type_ids for e in encodings]
        added = backend.num_special_tokens_to_add(False)
        untruncated = np.fromiter(
            (len(e.ids) + sum(len(o.ids) - added for o in e.overflowing) for e in encodings),
            dtype=np.int64, count=len(encodings))
        return out, untruncated

    def embed_tokens(self, tokens: Tokens, batch_size: int = 64, max_tokens: int | None = None,
                     stats: dict[str, float] | None = None) -> np.ndarray:
        """(n, dim) float32 embeddings of :meth:`tokenize`'s output, batched as :meth:`encode` says.
        ``stats``, when given, gains ``rows``, ``tokens`` (real), ``padded`` (tokens run, padding and
        filler rows included), ``passes`` and ``forward_s`` (seconds)."""
        n = len(tokens.lengths)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        started = time.perf_counter()
        plan = self.plan(tokens.lengths, batch_size, max_tokens)
        bf16 = self.precision == "bfloat16"
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        pad_values, left = self._padding
        pieces: list[tuple[np.ndarray, torch.Tensor]] = []
        # One autocast region for the whole call: the bfloat16 copies of the weights are made once.
        # Results stay on the device until the end: on a GPU, the next batch is padded while this one runs.
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            for step in plan:
                batch = pad_rows(tokens.encoded, tokens.keys, step.idx, tokens.lengths[step.idx], pad_values,
                                 left=left, width=step.width, rows=step.rows)
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                pieces.append((step.idx, self._forward(batch)[:len(step.idx)]))
            for idx, emb in pieces:
                out[idx] = emb.cpu().numpy()
        if stats is not None:
            for key, value in (("rows", n), ("tokens", int(tokens.lengths.sum())), ("passes", len(plan)),
                               ("padded", sum(p.rows * p.width for p in plan)),
                               ("forward_s", time.perf_counter() - started)):
                stats[key] = stats.get(key, 0) + value
        return out

    def plan(self, lengths: np.ndarray, batch_size: int = 64, max_tokens: int | None = None) -> list[Pass]:
        """The forward passes for rows of ``lengths`` (n,) tokens: fixed shapes per length bucket when
        :attr:`fixed_shapes` (:func:`~smart_spark.embed.batches.fixed_shape_batches`), else length-sorted
        passes padded to their longest row (:func:`~smart_spark.embed.batches.token_passes`)."""
        if self.fixed_shapes:
            return fixed_shape_batches(lengths, batch_size, max_tokens, self.max_length)
        return token_passes(lengths, batch_size, max_tokens)

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One padded batch → (b, dim) float32 embeddings on the encoder's device (the transformer under
        the caller's autocast; pooling, Dense and normalisation in float32, outside it)."""
        tokens = self.model(**{k: v for k, v in batch.items() if k in self._forward_keys}).last_hidden_state
        with torch.autocast(tokens.device.type, enabled=False):
            return apply_head(tokens.float(), batch["attention_mask"], self.spec.modules, self._dense,
                              self._prompt_length)

    def __repr__(self) -> str:
        return f"Encoder({self.model_id!r}, device={self.device!r}, dim={self.dim}, {self.precision})"


_TOKENIZERS: dict[str, Any] = {}


def load_tokenizer(model: str | None) -> Any:
    """The Hugging Face tokenizer of ``model``'s transformer (no weights loaded), once per process."""
    spec = read_spec(model)
    with _LOAD_LOCK:
        tokenizer = _TOKENIZERS.get(spec.transformer_path)
        if tokenizer is None:
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(spec.transformer_path, **spec.tokenizer_kwargs)
            except Exception as e:  # any loading failure means the folder is not a usable model
                raise SmartError(f"--model {spec.path}: cannot load the tokenizer: {e}") from e
            _TOKENIZERS[spec.transformer_path] = tokenizer
    return tokenizer


def has_chat_template(model: str | None) -> bool:
    """Whether ``model``'s tokenizer carries a chat template."""
    return bool(getattr(load_tokenizer(model), "chat_template", None))


def token_counts(model: str | None, texts: Sequence[str]) -> np.ndarray:
    """Untruncated token counts (int64) of ``texts`` as the encoder tokenizes them (default prompt and
    special tokens included): compare with the effective ``max_length`` to tell which get truncated."""
    spec = read_spec(model)
    tokenizer = load_tokenizer(model)
    inputs = [spec.prompt + t for t in texts] if spec.prompt else list(texts)
    if spec.do_lower_case:
        inputs = [t.lower() for t in inputs]
    ids = tokenizer(inputs, truncation=False, return_attention_mask=False, verbose=False)["input_ids"]
    return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(inputs))
