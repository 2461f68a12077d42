"""The job's settings: command-line flags and the optional YAML config, resolved and validated.

Every flag of INTERFACES.md section 1 is also a key of the YAML file (``--num-tasks`` = ``num_tasks:``);
a flag given on the command line overrides the file. Validation happens here, before any Spark work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml

from smart_spark.core.weighting import Stage1Settings
from smart_spark.errors import SmartError
from smart_spark.spark.reader import InputSpec

SET_FUNCTIONS = ("fl", "gc", "logdet")
TASK_FUNCTIONS = (*SET_FUNCTIONS, "random")
INSTANCE_FUNCTIONS = (*SET_FUNCTIONS, "random")
STRATA_MODES = ("proportional", "equal", "flan")
STRATEGIES = ("smart", "epm", "em", "fixed")
INPUT_FORMATS = ("auto", "delta", "parquet", "json", "table")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "float32", "bfloat16")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")


@dataclass
class JobConfig:
    """Every resolved setting of one run (the ``runs.config`` JSON is ``to_json()`` of this)."""

    input: str
    output: str
    num_instances: int
    input_format: str = "auto"
    task_col: str = "task"
    prompt_col: str = "prompt"
    response_col: str = "response"
    id_col: str | None = None
    stratum_col: str | None = None
    strata: str = "proportional"
    embedding_col: str | None = None
    model: str | None = None
    max_length: int = 256
    embed_batch_size: int = 64
    embed_max_tokens: int = 16384
    device: str = "auto"
    precision: str = "auto"
    embeddings_table: str | None = None
    num_tasks: int | None = None
    task_fn: str = "gc"
    instance_fn: str = "fl"
    gc_lambda: float = 0.4
    logdet_lambda: float = 1.0
    temperature: float = 1.0
    partition_size: int = 20000
    seed: int = 23
    run_id: str = field(default_factory=lambda: default_run_id())
    strategy: str = "smart"
    epm_cap: int | None = None
    group_col: str | None = None
    group_weights: dict[str, float] | None = None
    #: Budget sweeps: every (M', N') pair of these lists is one mixture (``expand_sweep``).
    num_tasks_list: list[int | None] = field(default_factory=list)
    num_instances_list: list[int] = field(default_factory=list)
    report: bool = True

    def input_spec(self) -> InputSpec:
        """The input settings, for :mod:`smart_spark.spark.reader`."""
        return InputSpec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(InputSpec)})

    def stage1(self) -> Stage1Settings:
        """The stage-1 settings, for :func:`smart_spark.core.weighting.weigh_tasks`."""
        names = {f.name for f in dataclasses.fields(Stage1Settings)} - {"stratified"}
        return Stage1Settings(stratified=self.stratum_col is not None,
                              **{name: getattr(self, name) for name in names})

    def to_json(self) -> str:
        """All settings as a JSON object with sorted keys."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def default_run_id() -> str:
    """``YYYYmmddTHHMMSSZ-<8 hex>``: sortable by start time, unique across concurrent runs."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


# (flag name, type, help). Defaults come from JobConfig; None means "not given".
_FLAGS: list[tuple[str, type, str]] = [
    ("input", str, "input path (Delta, Parquet, JSON Lines) or catalog table name"),
    ("input-format", str, "auto, delta, parquet, json or table"),
    ("output", str, "folder holding the output Delta tables, or a catalog schema (catalog.db)"),
    ("task-col", str, "task column"),
    ("prompt-col", str, "prompt column (embedded)"),
    ("response-col", str, "response column"),
    ("id-col", str, "stable instance id column (default: hash of task, prompt, response)"),
    ("stratum-col", str, "stratum column (FLAN: template type)"),
    ("strata", str, "proportional, equal or flan"),
    ("embedding-col", str, "precomputed embedding column; nothing is embedded when given"),
    ("model", str, "Hugging Face encoder folder or offline-resolvable id"),
    ("max-length", int, "tokenizer truncation (tokens)"),
    ("embed-batch-size", int, "most rows per forward pass"),
    ("embed-max-tokens", int, "most padded tokens per forward pass (rows sorted by length)"),
    ("device", str, "auto, cpu or cuda"),
    ("precision", str, "auto (bfloat16 on CUDA with bf16, else float32), float32 or bfloat16"),
    ("embeddings-table", str, "embedding cache table (default <output>/embeddings)"),
    ("num-tasks", str, "M': tasks kept by stage 1 (an integer or 'all'; a list such as 8,16,all sweeps)"),
    ("num-instances", str, "N': instances in the mixture (a list such as 25000,50000 sweeps)"),
    ("task-fn", str, "stage-1 function: gc, fl, logdet, random"),
    ("instance-fn", str, "stage-2 function: fl, gc, logdet, random"),
    ("gc-lambda", float, "graph-cut lambda"),
    ("logdet-lambda", float, "log-determinant lambda"),
    ("temperature", float, "Taylor-softmax temperature"),
    ("partition-size", int, "P: most rows one greedy holds a kernel for"),
    ("seed", int, "seed for random picks, partition hashing"),
    ("run-id", str, "run id (rerunning one replaces that run)"),
    ("strategy", str, "smart, or a baseline: epm (examples-proportional), em (equal)"),
    ("epm-cap", int, "EPM: cap each task's size at K before normalising (T5)"),
    ("group-col", str, "fixed: the column whose values get fixed weights (one value per task)"),
    ("group-weights", str, "fixed: weights per group value, e.g. flan=40,t0=32,niv2=20,cot=5,dialog=3"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smart_mixture.py",
        description="Build a SMART instruction-tuning data mixture and write it as Delta tables.",
    )
    parser.add_argument("--config", help="YAML file whose keys are the flags below (underscored)")
    for name, typ, help_text in _FLAGS:
        parser.add_argument(f"--{name}", type=typ, default=None, help=help_text)
    parser.add_argument("--no-report", dest="report", action="store_const", const=False, default=None,
                        help="do not write report.md and the chart")
    return parser


def _parse_num_tasks(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SmartError(f"--num-tasks must be an integer or 'all', got {value!r}") from None


def _as_list(value: Any) -> list[Any]:
    """A flag's comma-separated list (or a YAML list) as a list of its items."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and "," in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    return [value]


def _parse_num_instances(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SmartError(f"--num-instances must be an integer, got {value!r}") from None


def _parse_weights(text: str) -> dict[str, float]:
    """``"a=40,b=32"`` -> {"a": 40.0, "b": 32.0}, in the order given."""
    weights: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            weights[name.strip()] = float(value)
        except ValueError:
            raise SmartError(f"--group-weights must look like name=weight,... got {item!r}") from None
    return weights


def expand_sweep(config: JobConfig) -> list[JobConfig]:
    """One config per (M', N') pair of a sweep, run id ``<run-id>/m<M'>-n<N'>``; [config] otherwise."""
    pairs = [(m, n) for m in config.num_tasks_list for n in config.num_instances_list]
    if len(pairs) <= 1:
        return [config]
    return [
        dataclasses.replace(config, num_tasks=m, num_instances=n, num_tasks_list=[m], num_instances_list=[n],
                            run_id=f"{config.run_id}/m{'all' if m is None else m}-n{n}")
        for m, n in pairs
    ]


def load_config(argv: Sequence[str] | None = None) -> JobConfig:
    """Parse flags and the optional YAML file into a validated :class:`JobConfig`."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise SmartError(f"cannot read --config {args.config}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise SmartError(f"--config {args.config} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise SmartError(f"--config {args.config} must hold a mapping of settings")
        values.update({str(k).replace("-", "_"): v for k, v in loaded.items()})
    for key, value in vars(args).items():
        if key != "config" and value is not None:
            values[key] = value
    return make_config(values)


def make_config(values: dict[str, Any]) -> JobConfig:
    """Build and validate a :class:`JobConfig` from a mapping of setting name to value."""
    known = {f.name for f in dataclasses.fields(JobConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SmartError(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for required in ("input", "output", "num_instances"):
        if values.get(required) in (None, ""):
            raise SmartError(f"--{required.replace('_', '-')} is required")
    values = dict(values)
    tasks = [_parse_num_tasks(v) for v in _as_list(values.get("num_tasks"))]
    instances = [_parse_num_instances(v) for v in _as_list(values["num_instances"])]
    if len(set(tasks)) != len(tasks) or len(set(instances)) != len(instances):
        raise SmartError("--num-tasks and --num-instances lists must not repeat a value")
    values["num_tasks_list"], values["num_instances_list"] = tasks, instances
    values["num_tasks"] = None if None in tasks else max(tasks)
    values["num_instances"] = max(instances)
    for key, typ in (("epm_cap", int), ("max_length", int), ("embed_batch_size", int),
                     ("embed_max_tokens", int),
                     ("partition_size", int), ("seed", int), ("gc_lambda", float),
                     ("logdet_lambda", float), ("temperature", float)):
        if key in values and values[key] is not None:
            try:
                values[key] = typ(values[key])
            except (TypeError, ValueError):
                raise SmartError(f"--{key.replace('_', '-')} must be a number, got {values[key]!r}") from None
    if isinstance(values.get("group_weights"), str):
        values["group_weights"] = _parse_weights(values["group_weights"])
    if "run_id" in values and values["run_id"] is not None:
        values["run_id"] = str(values["run_id"])
    config = JobConfig(**values)
    validate(config)
    return config


def _choice(flag: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise SmartError(f"--{flag} must be one of {', '.join(allowed)}, got {value!r}")


def validate(config: JobConfig) -> None:
    """Raise :class:`SmartError` naming the first bad setting."""
    _choice("input-format", config.input_format, INPUT_FORMATS)
    _choice("task-fn", config.task_fn, TASK_FUNCTIONS)
    _choice("instance-fn", config.instance_fn, INSTANCE_FUNCTIONS)
    _choice("strata", config.strata, STRATA_MODES)
    _choice("device", config.device, DEVICES)
    _choice("precision", config.precision, PRECISIONS)
    _choice("strategy", config.strategy, STRATEGIES)
    if config.strategy == "fixed" and (not config.group_col or not config.group_weights):
        raise SmartError("--strategy fixed needs --group-col and --group-weights")
    if config.group_weights and any(not w >= 0 for w in config.group_weights.values()):
        raise SmartError(f"--group-weights must be non-negative numbers, got {config.group_weights}")
    if config.epm_cap is not None and config.epm_cap <= 0:
        raise SmartError(f"--epm-cap must be positive, got {config.epm_cap}")
    for n in config.num_instances_list or [config.num_instances]:
        if n <= 0:
            raise SmartError(f"--num-instances must be positive, got {n}")
    for m in config.num_tasks_list or [config.num_tasks]:
        if m is not None and m <= 0:
            raise SmartError(f"--num-tasks must be positive or 'all', got {m}")
    if config.partition_size < 2:
        raise SmartError(f"--partition-size must be at least 2, got {config.partition_size}")
    if config.max_length <= 0 or config.embed_batch_size <= 0:
        raise SmartError("--max-length and --embed-batch-size must be positive")
    if config.embed_max_tokens <= 0:
        raise SmartError(f"--embed-max-tokens must be positive, got {config.embed_max_tokens}")
    if config.temperature <= 0:
        raise SmartError(f"--temperature must be positive, got {config.temperature}")
    if config.gc_lambda < 0 or config.logdet_lambda <= 0:
        raise SmartError("--gc-lambda must be >= 0 and --logdet-lambda > 0")
    if not RUN_ID_PATTERN.match(config.run_id):
        raise SmartError(f"--run-id {config.run_id!r} must be 1-128 letters, digits or _.:/- characters")
    if config.strata == "flan" and config.stratum_col is None:
        raise SmartError("--strata flan needs --stratum-col (the template-type column)")
    cols = {"task-col": config.task_col, "id-col": config.id_col, "stratum-col": config.stratum_col,
            "embedding-col": config.embedding_col}
    if config.embedding_col is None:
        cols["prompt-col"] = config.prompt_col
    seen: dict[str, str] = {}
    for flag, column in cols.items():
        if column and column in seen:
            raise SmartError(f"--{seen[column]} and --{flag} both name the column {column!r}")
        if column:
            seen[column] = flag
