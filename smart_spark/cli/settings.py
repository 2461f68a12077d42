"""The job's settings, declared once: every flag, YAML key, type, allowed value, default and bound.

Each field of :class:`JobConfig` carries its own declaration (:func:`setting`); the command-line parser,
``--help`` (with defaults and required flags), the YAML keys (``--num-tasks`` = ``num_tasks:``), type
coercion and the per-setting checks are all generated from it. Only rules that relate several settings
are written out, in :func:`validate`. A flag given on the command line overrides the file. Everything is
checked here, before any Spark work. docs/usage.md lists the settings for people.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml

from smart_spark.core.greedy import FUNCTIONS
from smart_spark.core.quality import DEFAULT_MAX_INPUT_ROWS, MAX_VENDI_ROWS, SAMPLE_ROWS, VENDI_ROWS
from smart_spark.core.strata import STRATA_MODES
from smart_spark.core.task_selection import TASK_FNS
from smart_spark.core.weighting import STRATEGIES, Stage1Settings
from smart_spark.embed.device import PRECISIONS
from smart_spark.embed.settings import EncoderSettings
from smart_spark.errors import SmartError
from smart_spark.spark.chat import DEFAULT_PROMPT_FROM, PROMPT_FROM
from smart_spark.spark.instances import INSTANCE_STORAGE
from smart_spark.spark.reader import INPUT_FORMATS, InputSpec

INSTANCE_FUNCTIONS = (*FUNCTIONS, "random")
DEVICES = ("auto", "cpu", "cuda")
TASK_SOURCES = ("column", "clusters")
#: A run id: 1-128 letters, digits or ``_.:/-``, starting with a letter or digit (no backslash, space or
#: control character); :func:`check_run_id` also refuses ``..`` and empty or ``.`` parts between slashes.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")
REQUIRED = dataclasses.MISSING  # the default of a setting that must be given


def setting(default: Any = REQUIRED, help: str = "", *, choices: Sequence[str] | None = None,
            minimum: float | None = None, above: float | None = None,
            parse: Callable[[Any], Any] | None = None, metavar: str | None = None,
            default_text: str | None = None, default_factory: Callable[[], Any] | None = None) -> Any:
    """A :class:`JobConfig` field and its declaration.

    ``choices``: allowed values; ``minimum`` / ``above``: the value must be >= / > this; ``parse``: turns
    a flag's or YAML's value into the field's type (raising ValueError or SmartError on a bad one);
    ``default_text``: how ``--help`` shows a default that is computed (``default_factory``).
    """
    meta = {"help": help, "choices": choices, "minimum": minimum, "above": above, "parse": parse,
            "metavar": metavar, "default_text": default_text}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def default_run_id() -> str:
    """``YYYYmmddTHHMMSSZ-<8 hex>``: sortable by start time, unique across concurrent runs."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def check_run_id(run_id: str) -> None:
    """A run id is data, not a path: SmartError naming ``--run-id`` unless it matches
    :data:`RUN_ID_PATTERN`, has no ``..`` and no empty or ``.`` part between slashes.

    Single ``/`` separators stay valid: budget sweeps name their mixtures ``<run-id>/m<M'>-n<N'>``.
    """
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise SmartError(f"--run-id {run_id!r} must be 1-128 letters, digits or _.:/- characters, "
                         "starting with a letter or digit")
    if ".." in run_id or any(part in ("", ".") for part in run_id.split("/")):
        raise SmartError(f"--run-id {run_id!r} is a name, not a path: no '..', and no empty or '.' part "
                         "between slashes (a sweep's ids are <run-id>/m<M'>-n<N'>)")


def parse_num_tasks(value: Any) -> list[int | None]:
    """M' as a list: ``"all"`` is None; ``"8,16,all"`` (or a YAML list) sweeps."""
    out: list[int | None] = []
    for item in _as_list(value):
        if item is None or (isinstance(item, str) and item.strip().lower() == "all"):
            out.append(None)
            continue
        try:
            out.append(int(item))
        except (TypeError, ValueError):
            raise SmartError(f"--num-tasks must be an integer or 'all', got {item!r}") from None
    return out


def parse_num_instances(value: Any) -> list[int]:
    """N' as a list: ``"25000,50000"`` (or a YAML list) sweeps."""
    try:
        return [int(item) for item in _as_list(value)]
    except (TypeError, ValueError):
        raise SmartError(f"--num-instances must be an integer, got {value!r}") from None


def parse_weights(value: Any) -> dict[str, float]:
    """``"a=40,b=32"`` (or a YAML mapping) -> {"a": 40.0, "b": 32.0}, in the order given."""
    if isinstance(value, dict):
        items = [f"{k}={v}" for k, v in value.items()]
    else:
        items = str(value).split(",")
    weights: dict[str, float] = {}
    for item in items:
        name, sep, number = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            weights[name.strip()] = float(number)
        except ValueError:
            raise SmartError(f"--group-weights must look like name=weight,... got {item!r}") from None
    return weights


def _as_list(value: Any) -> list[Any]:
    """A flag's comma-separated list (or a YAML list) as a list of its items."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and "," in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    return [value]


@dataclass
class JobConfig:
    """Every resolved setting of one run (the ``runs.config`` JSON is ``to_json()`` of this).

    ``num_tasks`` / ``num_instances`` hold the largest M' / N' of a sweep; the lists hold all of them.
    """

    # The input and its columns.
    input: str = setting(help="input path (Delta, Parquet, JSON Lines) or catalog table name")
    output: str = setting(help="folder holding the output Delta tables (a path with a slash, a URI or an "
                          "existing folder), or a catalog schema (catalog.db, catalog:db)")
    num_instances: int = setting(
        help="N': instances in the mixture (a list such as 25000,50000 sweeps)", metavar="N[,N...]")
    input_format: str = setting("auto", "format of --input", choices=INPUT_FORMATS)
    task_col: str = setting("task", "task column")
    prompt_col: str = setting("prompt", "prompt column (embedded)")
    task_expr: str | None = setting(
        None, "Spark SQL expression for the task instead of --task-col, e.g. coalesce(source, 'unknown')")
    prompt_expr: str | None = setting(
        None, "Spark SQL expression for the prompt instead of --prompt-col, e.g. "
        "concat_ws(' ', instruction, input)")
    messages_col: str | None = setting(None, "chat input: array of {role, content} or {from, value} turns")
    prompt_from: str = setting(DEFAULT_PROMPT_FROM, "chat input: what of a conversation is embedded",
                               choices=PROMPT_FROM)
    response_col: str = setting("response", "response column")
    id_col: str | None = setting(None, "stable instance id column (default: hash of task, prompt, response)")
    stratum_col: str | None = setting(None, "stratum column (FLAN: template type)")
    strata: str = setting("proportional", "how a task's budget is split over its strata",
                          choices=STRATA_MODES)
    # Embedding.
    embedding_col: str | None = setting(None, "precomputed embedding column; nothing is embedded when given")
    model: str | None = setting(None, "Hugging Face encoder folder or offline-resolvable id",
                                default_text="the bundled all-MiniLM-L6-v2")
    max_length: int = setting(256, "tokenizer truncation (tokens)", minimum=1)
    embed_batch_size: int = setting(64, "most rows per forward pass", minimum=1)
    embed_max_tokens: int = setting(2048, "most padded tokens per forward pass (raise it on GPUs)",
                                    above=0)
    device: str = setting("auto", "where the encoder and the FL greedy run", choices=DEVICES)
    precision: str = setting("auto", "encoder precision: auto is bfloat16 on GPUs that have it, float32 "
                             "elsewhere", choices=PRECISIONS)
    embeddings_table: str | None = setting(None, "embedding cache table", default_text="<output>/embeddings")
    instance_storage: str = setting(
        INSTANCE_STORAGE[0], "Spark storage level of the instances between stages: DISK_ONLY leaves the "
        "heap to the stages (docs/usage.md, Memory)", choices=INSTANCE_STORAGE)
    # Stage 1: tasks, weights, budgets.
    num_tasks: int | None = setting(
        None, "M': tasks kept by stage 1 (an integer or 'all'; a list such as 8,16,all sweeps)",
        metavar="M[,M...]", default_text="all")
    task_fn: str = setting("gc", "stage-1 function", choices=TASK_FNS)
    instance_fn: str = setting("fl", "stage-2 function", choices=INSTANCE_FUNCTIONS)
    gc_lambda: float = setting(0.4, "graph-cut lambda", minimum=0)
    logdet_lambda: float = setting(1.0, "log-determinant lambda", above=0)
    temperature: float = setting(1.0, "Taylor-softmax temperature", above=0)
    partition_size: int = setting(20000, "P: most rows one greedy holds a kernel for", minimum=2)
    seed: int = setting(23, "seed for random picks, partition hashing")
    run_id: str = setting(help="run id (rerunning one replaces that run)", default_factory=default_run_id,
                          default_text="<UTC time>-<8 hex>")
    # Baselines.
    strategy: str = setting("smart", "smart, or a baseline: epm (examples-proportional), em (equal), "
                            "fixed (--group-weights)", choices=STRATEGIES)
    epm_cap: int | None = setting(None, "EPM: cap each task's size at K before normalising (T5)", above=0)
    group_col: str | None = setting(None, "fixed: the column whose values get fixed weights (one per task)")
    group_weights: dict[str, float] | None = setting(
        None, "fixed: weights per group value, e.g. flan=40,t0=32,niv2=20,cot=5,dialog=3",
        parse=parse_weights, metavar="NAME=W,...")
    # Tasks from k-means clusters of the embeddings (docs/clusters.md).
    tasks_from: str = setting("column", "column (the task column) or clusters (k-means clusters of the "
                              "embeddings)", choices=TASK_SOURCES)
    num_clusters: int | None = setting(None, "clusters: K, the number of k-means clusters (tasks)")
    split_tasks: int | None = setting(
        None, "split each labelled task into K k-means clusters (tasks <task>/c<k>)")
    # Semantic decontamination against a table or file of evaluation prompts (docs/decontamination.md).
    decontaminate: str | None = setting(
        None, "evaluation prompts (path or table): near copies are removed from the input")
    decontaminate_id_col: str = setting("id", "id column of the evaluation prompts")
    decontaminate_prompt_col: str = setting("prompt", "prompt column of the evaluation prompts")
    decontamination_threshold: float = setting(
        0.8, "cosine similarity at or above which an instance is removed")
    report: bool = setting(True, "write report.md and the chart beside the tables")
    # What each mixture covers of the collection (docs/quality.md).
    quality: bool | None = setting(
        None, "measure each mixture into mixture_quality (coverage, redundancy, Vendi score)",
        default_text=f"on for inputs of at most {DEFAULT_MAX_INPUT_ROWS:,} rows")
    quality_sample: int = setting(SAMPLE_ROWS, "input (and mixture) rows sampled per scope for coverage "
                                  "(and redundancy)", above=0)
    quality_vendi_rows: int = setting(VENDI_ROWS, f"most mixture rows per scope for the Vendi score (at most "
                                      f"{MAX_VENDI_ROWS:,})", above=0)
    # Console detail (smart_spark/cli/logs.py).
    quiet: bool = setting(False, "print warnings and errors only")
    verbose: bool = setting(False, "print debug detail (and the JVM's warnings)")
    # Crash consistency (docs/reliability.md).
    stale_after: float = setting(
        120.0, "seconds without a heartbeat after which an unfinished run is dead and its rows are put back",
        above=0)
    #: Budget sweeps: every (M', N') pair of these lists is one mixture (``expand_sweep``); derived from
    #: num_tasks / num_instances, not flags of their own.
    num_tasks_list: list[int | None] = field(default_factory=list, metadata={"derived": True})
    num_instances_list: list[int] = field(default_factory=list, metadata={"derived": True})

    def input_spec(self) -> InputSpec:
        """The input settings, for :mod:`smart_spark.spark.reader`."""
        return InputSpec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(InputSpec)})

    def stage1(self) -> Stage1Settings:
        """The stage-1 settings, for :func:`smart_spark.core.weighting.weigh_tasks`."""
        names = {f.name for f in dataclasses.fields(Stage1Settings)} - {"stratified"}
        return Stage1Settings(stratified=self.stratum_col is not None,
                              **{name: getattr(self, name) for name in names})

    def encoder_settings(self) -> EncoderSettings:
        """The encoder settings, for the embedding stages (instances and evaluation prompts alike)."""
        return EncoderSettings(model=self.model, max_length=self.max_length, batch_size=self.embed_batch_size,
                               max_tokens=self.embed_max_tokens, device=self.device, precision=self.precision)

    def to_json(self) -> str:
        """All settings as a JSON object with sorted keys."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def declared() -> list[dataclasses.Field]:
    """The settings a user gives (flags and YAML keys), in declaration order."""
    return [f for f in dataclasses.fields(JobConfig) if not f.metadata.get("derived")]


def flag(name: str) -> str:
    """``num_tasks`` -> ``--num-tasks``."""
    return "--" + name.replace("_", "-")


def is_switch(f: dataclasses.Field) -> bool:
    """Whether a setting is a boolean switch (a flag without a value); ``bool | None`` ones default to
    "decided by the run" (``--quality``)."""
    return f.type in ("bool", bool, "bool | None")


def switch(f: dataclasses.Field, on: bool | None = None) -> str:
    """The flag that turns a boolean setting ``on`` (``--name``) or off (``--no-name``); by default the one
    that changes it from its default."""
    if on is None:
        on = f.default is not True
    return flag(f.name) if on else f"--no-{f.name.replace('_', '-')}"


def _default_text(f: dataclasses.Field) -> str | None:
    if f.metadata.get("default_text"):
        return f.metadata["default_text"]
    if f.default is REQUIRED or f.default is None:
        return None
    return str(f.default)


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from :func:`declared`: each flag with its allowed values and default."""
    parser = argparse.ArgumentParser(
        prog="smart_mixture.py",
        description="Build a SMART instruction-tuning data mixture and write it as Delta tables. "
                    "Every flag is also a key of the --config YAML file (--num-tasks = num_tasks:).",
        epilog="Settings, tables and the algorithm: docs/ in the repository.",
    )
    required = parser.add_argument_group("required (on the command line or in --config)")
    optional = parser.add_argument_group("settings")
    optional.add_argument("--config", metavar="FILE",
                          help="YAML file whose keys are the flags below (underscored)")
    for f in declared():
        meta = f.metadata
        group = required if f.default is REQUIRED and f.default_factory is REQUIRED else optional
        if is_switch(f):  # --name turns it on, --no-name off (both when the run decides by default)
            ways = (True, False) if f.default is None else (f.default is not True,)
            for on in ways:
                default = f" (default: {meta['default_text']})" if on and meta["default_text"] else ""
                group.add_argument(switch(f, on), dest=f.name, action="store_const", const=on, default=None,
                                   help=meta["help"] + default if on else f"do not {meta['help']}")
            continue
        default = _default_text(f)
        text = meta["help"] if default is None else f"{meta['help']} (default: {default})"
        metavar = meta["metavar"] or ("{" + ",".join(meta["choices"]) + "}" if meta["choices"] else None)
        group.add_argument(flag(f.name), default=None, metavar=metavar, help=text)
    return parser


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


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """One setting's value as its declared type, or a SmartError naming the flag."""
    if value is None:
        return None
    if f.metadata.get("parse"):
        return f.metadata["parse"](value)
    typ = f.type.split(" | ")[0] if isinstance(f.type, str) else f.type
    try:
        if typ == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if typ == "float":
            return float(value)
        if typ == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "yes", "1")
            return bool(value)
    except (TypeError, ValueError):
        raise SmartError(f"{flag(f.name)} must be a number, got {value!r}") from None
    return str(value)


def _check(f: dataclasses.Field, value: Any) -> None:
    """One setting's own rules: allowed values and bounds."""
    meta = f.metadata
    if value is None:
        return
    if meta["choices"] and value not in meta["choices"]:
        raise SmartError(f"{flag(f.name)} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise SmartError(f"{flag(f.name)} must be at least {meta['minimum']}, got {value}")
    if meta["above"] is not None and not value > meta["above"]:
        bound = "positive" if meta["above"] == 0 else f"> {meta['above']}"
        raise SmartError(f"{flag(f.name)} must be {bound}, got {value}")


def make_config(values: dict[str, Any]) -> JobConfig:
    """Build and validate a :class:`JobConfig` from a mapping of setting name to value."""
    fields = {f.name: f for f in declared()}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SmartError(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    for name, f in fields.items():
        if f.default is REQUIRED and f.default_factory is REQUIRED and values.get(name) in (None, ""):
            raise SmartError(f"{flag(name)} is required")
    values = dict(values)
    tasks = parse_num_tasks(values.pop("num_tasks", None))
    instances = parse_num_instances(values.pop("num_instances"))
    if len(set(tasks)) != len(tasks) or len(set(instances)) != len(instances):
        raise SmartError("--num-tasks and --num-instances lists must not repeat a value")
    for n in instances:
        if n <= 0:
            raise SmartError(f"--num-instances must be positive, got {n}")
    for m in tasks:
        if m is not None and m <= 0:
            raise SmartError(f"--num-tasks must be positive or 'all', got {m}")
    resolved = {name: _coerce(fields[name], value) for name, value in values.items()}
    for name, value in resolved.items():
        _check(fields[name], value)
    config = JobConfig(**resolved, num_tasks=None if None in tasks else max(tasks),
                       num_instances=max(instances), num_tasks_list=tasks, num_instances_list=instances)
    validate(config)
    return config


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


def validate(config: JobConfig) -> None:
    """The rules that relate several settings; raises :class:`SmartError` naming the first broken one."""
    if config.tasks_from == "clusters" and (config.num_clusters is None or config.num_clusters < 2):
        raise SmartError("--tasks-from clusters needs --num-clusters of at least 2, "
                         f"got {config.num_clusters}")
    if config.tasks_from != "clusters" and config.num_clusters is not None:
        raise SmartError("--num-clusters needs --tasks-from clusters")
    if config.split_tasks is not None and (config.split_tasks < 2 or config.tasks_from == "clusters"):
        raise SmartError(f"--split-tasks must be at least 2 and needs --tasks-from column, got "
                         f"{config.split_tasks} with --tasks-from {config.tasks_from}")
    if config.strategy == "fixed" and config.tasks_from == "clusters":
        raise SmartError("--strategy fixed weighs labelled groups; use it with --split-tasks, not "
                         "--tasks-from clusters")
    if not -1.0 <= config.decontamination_threshold <= 1.0:
        raise SmartError(f"--decontamination-threshold is a cosine in [-1, 1], got "
                         f"{config.decontamination_threshold}")
    if config.strategy == "fixed" and (not config.group_col or not config.group_weights):
        raise SmartError("--strategy fixed needs --group-col and --group-weights")
    if config.group_weights and any(not w >= 0 for w in config.group_weights.values()):
        raise SmartError(f"--group-weights must be non-negative numbers, got {config.group_weights}")
    if config.quality_vendi_rows > MAX_VENDI_ROWS:
        raise SmartError(f"--quality-vendi-rows must be at most {MAX_VENDI_ROWS:,} (an eigen-decomposition "
                         f"of that many rows per scope is too large), got {config.quality_vendi_rows:,}")
    check_run_id(config.run_id)
    if config.strata == "flan" and config.stratum_col is None:
        raise SmartError("--strata flan needs --stratum-col (the template-type column)")
    if config.prompt_expr is not None and config.messages_col is not None:
        raise SmartError("--prompt-expr and --messages-col both define the prompt; give one")
    for name, text in (("task-expr", config.task_expr), ("prompt-expr", config.prompt_expr)):
        if text is not None and not str(text).strip():
            raise SmartError(f"--{name} is empty")
    cols = {"task-col": None if config.task_expr else config.task_col, "id-col": config.id_col,
            "stratum-col": config.stratum_col, "embedding-col": config.embedding_col}
    if config.embedding_col is None and config.prompt_expr is None and config.messages_col is None:
        cols["prompt-col"] = config.prompt_col
    seen: dict[str, str] = {}
    for name, column in cols.items():
        if column and column in seen:
            raise SmartError(f"--{seen[column]} and --{name} both name the column {column!r}")
        if column:
            seen[column] = name
