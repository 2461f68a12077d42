'''Build a SMART mixture from a DataFrame already in hand; write it with one call, or not at all.

The job (``jobs/smart_mixture.py``) is a thin wrapper: read, :func:`build_mixture`,
:meth:`MixtureResult.write`.
In a notebook::

    >>> from smart_spark import build_mixture
    >>> df = spark.read.json(SAMPLE)                       # id, task, prompt, response columns
    >>> result = build_mixture(df, id_col="id", num_instances=100, num_tasks=20, run_id="nb")
    >>> result.mixture.count()                             # a Spark DataFrame (lazy)
    100
    >>> sorted(result.task_weights.columns)[:3]            # a pandas frame, one row per task
    ['budget', 'gain', 'initial_budget']
    >>> result.summary["num_tasks_selected"]
    20

Nothing is written unless you call ``result.write(output)`` (the ``mixture``, ``task_weights`` and
``runs`` Delta tables, with ``decontaminate=`` also ``decontaminated``, with cluster tasks also
``clusters``, and the report under ``output``, exactly as the job writes them). Without an
``output`` or ``embeddings_table`` the embeddings are computed in memory and not cached.

Settings are the job's flags with underscores (``prompt_expr=``, ``messages_col=``, ``num_tasks=``...).
'''

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql import functions as F

from smart_spark.cli.settings import JobConfig, expand_sweep, make_config
from smart_spark.core.quality import DEFAULT_MAX_INPUT_ROWS
from smart_spark.core.weighting import weigh_tasks
from smart_spark.delta import delta_io
from smart_spark.errors import SmartError
from smart_spark.failpoints import failpoint
from smart_spark.spark.clusters import check_spark_ml, cluster_into_tasks, clusters_frame
from smart_spark.spark.decontaminate import (
    MATCH_COLUMNS,
    decontaminated_frame,
    read_eval_set,
    remove_contaminated,
)
from smart_spark.spark.instances import embed_instances, storage_level
from smart_spark.spark.outputs import code_version, commit_run, mixture_frame, runs_frame, task_weights_frame
from smart_spark.spark.progress import describe, stage, watch
from smart_spark.spark.quality import (
    comparable_runs,
    measure_quality,
    per_task,
    quality_frame,
    quality_summary,
)
from smart_spark.spark.reader import local_path, prepare
from smart_spark.spark.run_state import RunLedger, create_succeeded_view, new_attempt, recover
from smart_spark.spark.selection import select_sweep
from smart_spark.spark.task_stats import families_of, group_sizes, task_means, validate_embeddings
from smart_spark.spark.worker_python import check_worker_python

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: ``output`` of a config built for a DataFrame that is not (yet) written anywhere.
NOT_WRITTEN = "<not written>"
DATAFRAME_INPUT = "<DataFrame>"
#: Summary keys for the report only (``runs.metrics`` keeps the counts).
REPORT_ONLY = ("cluster_info", "quality_report")


@dataclass
class Mixture:
    """One mixture: its run id, rows (Spark, lazy), task table (pandas), summary and stage-1 plan."""

    run_id: str
    mixture: DataFrame
    task_weights: pd.DataFrame
    summary: dict[str, Any]
    plan: Any = field(repr=False)
    config: JobConfig = field(repr=False)
    #: The optional tables' rows (``decontaminated``, ``clusters``, ``mixture_quality``) by table name, when
    #: the run has them.
    tables: dict[str, DataFrame] = field(default_factory=dict, repr=False)
    #: What the mixture covers (:func:`~smart_spark.spark.quality.measure_quality`: one row per scope,
    #: ``all`` first), or None without ``--quality``.
    quality: pd.DataFrame | None = field(default=None, repr=False)


@dataclass
class MixtureResult:
    """What :func:`build_mixture` returns: one :class:`Mixture` per (M', N') pair (one without a sweep).

    ``mixture``, ``task_weights`` and ``summary`` are the single mixture's (for a sweep, ``summary``
    lists every mixture under ``"mixtures"``; use ``mixtures`` for the frames).
    """

    config: JobConfig
    mixtures: list[Mixture]
    base: dict[str, Any]
    stage_seconds: dict[str, float]
    started_at: datetime
    spark: SparkSession = field(repr=False)
    _cached: list[DataFrame] = field(default_factory=list, repr=False)
    #: task -> ``--group-col`` value, for the report's view by family (None: task-name prefixes).
    families: dict[str, str] | None = field(default=None, repr=False)

    @property
    def mixture(self) -> DataFrame:
        return self._single().mixture

    @property
    def task_weights(self) -> pd.DataFrame:
        return self._single().task_weights

    @property
    def summary(self) -> dict[str, Any]:
        if len(self.mixtures) == 1:
            return self.mixtures[0].summary
        return {**self.base, "run_id": self.config.run_id, "mixtures": [m.summary for m in self.mixtures]}

    def _single(self) -> Mixture:
        if len(self.mixtures) != 1:
            raise SmartError(f"this is a sweep of {len(self.mixtures)} mixtures: use .mixtures[i]")
        return self.mixtures[0]

    def write(self, output: str | None = None, *, report: bool | None = None) -> dict[str, Any]:
        """Write every mixture's ``mixture``, ``task_weights`` and ``runs`` rows under ``output`` (a folder
        or catalog schema; default: the ``output`` given to :func:`build_mixture`), all or nothing, then
        the report (``report``: default the config's). Returns :attr:`summary` (with ``stage_seconds``
        including ``write``)."""
        output = output or self.config.output
        if not output or output == NOT_WRITTEN:
            raise SmartError("write() needs an output: a folder or a catalog schema (catalog.db)")
        refs = delta_io.output_tables(output)
        what = f"write {len(self.mixtures)} mixture(s) to {output}"
        with stage(self.spark, "write", what, self.stage_seconds) as st:
            self._commit(output, refs)
            st.counts.update(mixtures=len(self.mixtures),
                             rows=", ".join(f"{m.summary['mixture_rows']:,}" for m in self.mixtures))
        self.base["output"] = output
        for m in self.mixtures:
            m.summary["stage_seconds"] = dict(self.stage_seconds)
        if self.config.report if report is None else report:
            self._after_commit("its report", lambda: self._write_reports(output, refs))
        return self.summary

    def _write_reports(self, output: str, refs: dict[str, delta_io.TableRef]) -> None:
        """Each mixture's report beside the tables (a local folder; else the console only); a mixture with
        ``--quality`` next to the output's other finished runs with its N'."""
        from smart_spark.report.quality import least_covered
        from smart_spark.report.run import write_reports

        for m in self.mixtures:
            if m.quality is not None:
                m.summary["quality_report"] = {
                    "runs": comparable_runs(self.spark, refs, m.summary["num_instances"]),
                    "tasks": least_covered(m.quality, m.task_weights)}
        local_out = local_path(output) if refs["mixture"].path else None
        write_reports(self.config.run_id, local_out, [(m.summary, m.task_weights) for m in self.mixtures],
                      families=self.families, quiet=self.config.quiet)

    def _after_commit(self, what: str, step: Callable[[], object]) -> None:
        """Run ``step`` after the final ``runs`` commit: the runs are finished, so a failure is a warning."""
        try:
            step()
        except Exception as error:  # noqa: BLE001 -- the run succeeded; say what is missing
            first = (str(error).strip().splitlines() or [""])[0]
            log.warning("run %s succeeded (its runs rows are committed), but %s failed: %s: %s",
                        self.config.run_id, what, type(error).__name__, first)

    def _commit(self, output: str, refs: dict[str, delta_io.TableRef]) -> None:
        """Recover dead runs, then commit every mixture's tables (all or nothing) under the run ledger."""
        # Runs on this output that a killed driver left unfinished are put back first (docs/reliability.md).
        own = [m.run_id for m in self.mixtures]
        for run_id, reason in recover(self.spark, refs, stale_after=self.config.stale_after,
                                      by=f"run {self.config.run_id}", own_run_ids=own):
            log.warning("put back unfinished run %s: %s", run_id, reason)
        runs, ledger_rows, attempt = [], {}, new_attempt()
        for m in self.mixtures:
            config = dataclasses.replace(m.config, output=output)
            m.summary["output"] = output
            # Visible as `running` (heartbeating) from before the first commit, with the same config.
            ledger_rows[m.run_id] = dict(started_at=self.started_at, config_json=config.to_json(),
                                         input_desc=config.input, input_version=self.base["input_version"],
                                         code_version=code_version())
            metrics = {**{k: v for k, v in m.summary.items() if k not in REPORT_ONLY}, "attempt": attempt}
            frames = {
                "mixture": m.mixture,
                **m.tables,
                "task_weights": task_weights_frame(self.spark, m.task_weights, m.run_id),
                "runs": runs_frame(self.spark, run_id=m.run_id, started_at=self.started_at,
                                   finished_at=datetime.now(timezone.utc), config_json=config.to_json(),
                                   input_desc=config.input, input_version=self.base["input_version"],
                                   metrics=metrics),
            }
            runs.append((m.run_id, frames))
        config_json = dataclasses.replace(self.config, output=output).to_json()
        with RunLedger(self.spark, refs, ledger_rows, stale_after=self.config.stale_after,
                       attempt=attempt) as ledger:
            commit_run(self.spark, refs, runs, config_json=config_json, ledger=ledger)
        self._after_commit("the succeeded view", lambda: create_succeeded_view(self.spark, output))

    def unpersist(self) -> None:
        """Release the cached embeddings and selections (the frames above then recompute)."""
        for frame in self._cached:
            frame.unpersist()


def build_mixture(df: DataFrame, *, config: JobConfig | None = None, input_version: int | None = None,
                  **settings: Any) -> MixtureResult:
    """The SMART mixture of ``df``: prepare (checks), embed, weigh tasks, select. Writes nothing, except
    new embeddings to the cache table when one is set (``embeddings_table``, or ``output``'s).

    ``settings``: the job's settings by name (``num_instances`` required); or a ready ``config``.
    Each stage logs its start and end (``smart_spark`` loggers, INFO) and labels its Spark jobs.
    """
    if config is None:
        values = {"input": DATAFRAME_INPUT, "output": NOT_WRITTEN, **settings}
        values["output"] = values["output"] or NOT_WRITTEN
        config = make_config(values)
    elif settings:
        raise SmartError("give build_mixture either config= or settings, not both")
    spark = df.sparkSession
    seconds: dict[str, float] = {}
    started_at = datetime.now(timezone.utc)
    configs = expand_sweep(config)

    log.info("run %s: %s", config.run_id, config.input)

    # Read: the derived columns (task, id, stratum, the prompt), checked before any work.
    with stage(spark, "read", f"read and check {config.input}", seconds) as st:
        check_worker_python(spark, encoder=config.embedding_col is None)  # before any Spark job
        prepared, counts = prepare(df, config.input_spec())
        check_budget(configs, counts["rows"])
        check_added_columns(df.columns, config)
        if config.tasks_from == "clusters" or config.split_tasks:
            check_spark_ml(spark)
        eval_frame = None
        if config.decontaminate:
            eval_frame = read_eval_set(spark, config.decontaminate, id_col=config.decontaminate_id_col,
                                       prompt_col=config.decontaminate_prompt_col,
                                       embedding_col=config.embedding_col)
        st.counts.update(rows=counts["rows"], columns=len(df.columns))

    # Embed: precomputed column, or the encoder over prompts (Delta cache unless none is set).
    what = (f"check the precomputed embeddings of {counts['rows']:,} rows" if config.embedding_col
            else f"embed {counts['rows']:,} prompts")
    with stage(spark, "embed", what, seconds) as st:
        instances, embed_stats = embed_instances(spark, prepared, embedding_col=config.embedding_col,
                                                 encoder=config.encoder_settings(),
                                                 cache=embeddings_cache(config),
                                                 prompt_keys=bool(config.decontaminate))
        instances = instances.persist(storage_level(config.instance_storage))
        flag = "--embedding-col" if config.embedding_col else "the encoder's output"
        describe(spark, "embed", "check the embeddings")
        dim = validate_embeddings(instances, "embedding", flag=flag)
        failpoint("after_embed")
        st.counts.update(rows=counts["rows"], dim=dim)
        if embed_stats is not None:
            st.counts.update(texts=embed_stats["texts"], cache_hits=embed_stats["cache_hits"],
                             cache_misses=embed_stats["embedded"])

    # Decontaminate: drop instances that copy or paraphrase an evaluation prompt (kept aside for the
    # `decontaminated` table).
    removed = None
    if config.decontaminate:
        with stage(spark, "decontaminate", f"remove near copies of {config.decontaminate}", seconds) as st:
            instances, removed = remove_contaminated(
                spark, prepared, instances, eval_frame, dim, source=config.decontaminate,
                threshold=config.decontamination_threshold, cache=embeddings_cache(config),
                encoder=None if config.embedding_col else config.encoder_settings(),
                storage=storage_level(config.instance_storage))
            st.counts.update(eval_prompts=removed.eval_prompts, removed=removed.removed, exact=removed.exact)
            check_budget(configs, counts["rows"] - removed.removed,
                         after=f"--decontaminate removed {removed.removed:,}")

    # Cluster: with --tasks-from clusters / --split-tasks, k-means clusters of the embeddings are the tasks.
    clustering = None
    if config.tasks_from == "clusters" or config.split_tasks:
        k = config.num_clusters or config.split_tasks
        what = (f"split each task into up to {k} k-means clusters" if config.split_tasks
                else f"k-means: {k} cluster tasks")
        with stage(spark, "cluster", what, seconds) as st:
            instances, clustering = cluster_into_tasks(spark, prepared, instances, k=k, seed=config.seed,
                                                       split=bool(config.split_tasks),
                                                       storage=storage_level(config.instance_storage))
            st.counts.update(clusters=len(clustering.info), fits=clustering.fits)

    # Weigh tasks: per-task means (distributed sums, M rows to the driver), greedy, budgets.
    with stage(spark, "weigh", "per-task mean embeddings and stage-1 budgets", seconds) as st:
        means = task_means(instances, "embedding")
        sizes = group_sizes(instances)
        task_groups = None if config.tasks_from == "clusters" else families_of(
            prepared, config.group_col, required=config.strategy == "fixed")
        if task_groups is not None and clustering is not None:  # --split-tasks: a part's group is its task's
            task_groups = {t: task_groups[c["parent_task"]] for t, c in clustering.info.items()}
        plans = [weigh_tasks(means, sizes, c.stage1(), task_groups) for c in configs]
        st.counts.update(tasks=len(means), kept=", ".join(
            str(int(p.task_weights["selected"].sum())) for p in plans))

    # Select: per (task, stratum) group, the budgeted instances by partitioned greedy.
    instance_fn = config.instance_fn if config.strategy == "smart" else "random"  # baselines: uniform
    groups = len({g for p in plans for g, b in p.group_budgets.items() if b > 0})
    with stage(spark, "select", f"select instances of {groups:,} (task, stratum) groups", seconds) as st, \
            watch(spark, "select", rows=groups, unit="groups"):
        selections = select_sweep(
            spark, instances, [p.group_budgets for p in plans], sizes, fn=instance_fn,
            partition_size=config.partition_size, seed=config.seed, gc_lambda=config.gc_lambda,
            logdet_lambda=config.logdet_lambda, device=config.device)
        failpoint("during_select")
        st.counts.update(groups=groups, rows=", ".join(f"{sum(p.group_budgets.values()):,}" for p in plans))

    # Quality: what each mixture covers of the collection (coverage, redundancy, Vendi), on the executors.
    qualities: list[pd.DataFrame | None] = [None] * len(configs)
    if config.quality if config.quality is not None else counts["rows"] <= DEFAULT_MAX_INPUT_ROWS:
        input_rows = per_task(sizes)
        with stage(spark, "quality", f"measure what {len(configs)} mixture(s) cover", seconds) as st:
            for i, (plan, selected) in enumerate(zip(plans, selections)):
                qualities[i] = measure_quality(
                    instances, selected, input_rows=input_rows, mixture_rows=per_task(plan.group_budgets),
                    sample=config.quality_sample, vendi_rows=config.quality_vendi_rows, seed=config.seed)
            st.counts.update(coverage=", ".join(f"{q.iloc[0]['coverage']:.3f}" for q in qualities))

    base = {
        "input": config.input, "input_version": input_version, "input_rows": int(means["n"].sum()),
        "num_tasks_total": len(means), "strategy": config.strategy,
        "task_fn": config.task_fn if config.strategy == "smart" else config.strategy,
        "instance_fn": instance_fn, "strata": config.strata if config.stratum_col else None,
        "partition_size": config.partition_size, "seed": config.seed, "embedding_dim": dim,
        "embed_stats": embed_stats, "output": config.output, "stage_seconds": seconds,
        "empty_prompts": counts["empty_prompts"],
        "group_col": config.group_col if task_groups is not None else None,
        "tasks_from": "clusters" if config.tasks_from == "clusters" else
        ("split" if config.split_tasks else "column"),
    }
    if removed is not None:
        base["decontamination"] = removed.summary()
    if clustering is not None:
        base["clusters"] = {"fits": clustering.fits, "clusters": len(clustering.info)}
    mixtures = []
    for c, plan, selected, quality in zip(configs, plans, selections, qualities):
        summary = {**base, "run_id": c.run_id, "num_instances": c.num_instances,
                   "num_tasks_selected": int(plan.task_weights["selected"].sum()),
                   "mixture_rows": int(sum(plan.group_budgets.values()))}
        tables = {}
        if quality is not None:
            summary["quality"] = quality_summary(quality)
            tables["mixture_quality"] = quality_frame(spark, quality, c.run_id)
        if removed is not None:
            tables["decontaminated"] = decontaminated_frame(prepared, removed.matches, run_id=c.run_id,
                                                            embedding_col=c.embedding_col)
        if clustering is not None:
            selected = selected.join(F.broadcast(clustering.index), "task")
            tables["clusters"] = clusters_frame(clustering.assignments, c.run_id)
            summary["cluster_info"] = clustering.info  # for the report only (REPORT_ONLY)
        rows = mixture_frame(prepared, selected, run_id=c.run_id, embedding_col=c.embedding_col)
        mixtures.append(Mixture(c.run_id, rows, plan.task_weights, summary, plan, c, tables, quality))
    cached = [instances, *selections]
    if removed is not None:
        cached.append(removed.matches)
    if clustering is not None:
        cached.append(clustering.assignments)
    return MixtureResult(config, mixtures, base, seconds, started_at, spark, cached, families=task_groups)


def check_added_columns(columns: list[str], config: JobConfig) -> None:
    """Input columns must not clash with what cluster tasks (``cluster`` in ``mixture``) and decontamination
    (``eval_id``, ``similarity``, ``match`` in ``decontaminated``) add: they would be silently replaced."""
    added = {}
    if config.tasks_from == "clusters" or config.split_tasks:
        added["cluster"] = "--tasks-from clusters / --split-tasks"
    if config.decontaminate:
        added.update({c: "--decontaminate" for c in MATCH_COLUMNS})
    clashes = [c for c in columns if c in added and c != config.embedding_col]
    if clashes:
        flags = " and ".join(sorted({added[c] for c in clashes}))
        raise SmartError(f"input column(s) {', '.join(clashes)} clash with the output columns that {flags} "
                         "adds; rename them")


def check_budget(configs: list[JobConfig], rows: int, *, after: str | None = None) -> None:
    """N' against the input's rows, right after reading (and again after ``after``: what removed rows),
    for every mixture that keeps all tasks."""
    for c in configs:
        if c.num_tasks is None and c.num_instances > rows:
            what = f"the {rows} rows left after {after}" if after else f"the input's {rows} rows"
            raise SmartError(f"--num-instances {c.num_instances} is more than {what} (--num-tasks all)")


def embeddings_cache(config: JobConfig) -> delta_io.TableRef | None:
    """The embedding cache table: ``embeddings_table``, else ``output``'s; None when neither is set."""
    if config.embeddings_table:
        return delta_io.table_ref(config.embeddings_table)
    if config.output and config.output != NOT_WRITTEN:
        return delta_io.output_tables(config.output)["embeddings"]
    return None
