"""spark-submit entry point: build a SMART data mixture and write it as Delta tables.

    spark-submit jobs/smart_mixture.py --input data.jsonl --output out/ --num-instances 1000

The data path, top to bottom: read, embed, weigh tasks, select, write. Flags: INTERFACES.md section 1
(``--help``). Exit status 0 on success; otherwise one line on stderr that names the problem.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from smart_spark.cli.settings import JobConfig, expand_sweep, load_config
from smart_spark.core.weighting import weigh_tasks
from smart_spark.delta import tables as delta_io
from smart_spark.errors import SmartError
from smart_spark.failpoints import InjectedFailure, failpoint
from smart_spark.spark.outputs import commit_run, mixture_frame, runs_frame, task_weights_frame
from smart_spark.spark.reader import embedding_array, local_path, prepare_instances, read_input
from smart_spark.spark.selection import select_sweep
from smart_spark.spark.session import get_spark
from smart_spark.spark.task_stats import group_of_tasks, group_sizes, task_means, validate_embeddings


class Stopwatch:
    """Seconds per named stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._last, 3)
        self._last = now


def run(spark: SparkSession, config: JobConfig) -> dict:
    """Run the whole job once; returns the run's summary (also recorded in ``runs.metrics``).

    A budget sweep (lists of M' or N') writes one mixture per pair under ``<run-id>/m<M'>-n<N'>``;
    its summary lists them under ``"mixtures"``.
    """
    started_at = datetime.now(timezone.utc)
    clock = Stopwatch()
    refs = delta_io.output_tables(config.output)
    configs = expand_sweep(config)

    # 1. Read: the input table, checked before any work.
    raw, input_version = read_input(spark, config.input_spec())
    prepared = prepare_instances(raw, config.input_spec())
    clock.lap("read")

    # 2. Embed: precomputed column, or the encoder over prompts with the Delta cache.
    embed_stats = None
    if config.embedding_col is not None:
        instances = prepared.select("task", "stratum", "id",
                                    embedding_array(prepared, config.embedding_col).alias("embedding"))
    else:
        from smart_spark.spark.embeddings import embed_with_cache

        cache = delta_io.table_ref(config.embeddings_table) if config.embeddings_table else refs["embeddings"]
        texts = prepared.select("task", "stratum", "id", F.col(config.prompt_col).alias("_text"))
        instances, embed_stats = embed_with_cache(
            spark, texts, text_col="_text", model=config.model, cache=cache, max_length=config.max_length,
            batch_size=config.embed_batch_size, device=config.device, precision=config.precision,
            max_tokens=config.embed_max_tokens)
        instances = instances.select("task", "stratum", "id", "embedding")
    instances = instances.persist()
    flag = "--embedding-col" if config.embedding_col else "the encoder's output"
    dim = validate_embeddings(instances, "embedding", flag=flag)
    failpoint("after_embed")
    clock.lap("embed")

    # 3. Weigh tasks: per-task means (distributed sums, M rows to the driver), greedy, budgets.
    means = task_means(instances, "embedding")
    sizes = group_sizes(instances)
    task_groups = group_of_tasks(prepared, config.group_col) if config.strategy == "fixed" else None
    plans = [weigh_tasks(means, sizes, c.stage1(), task_groups) for c in configs]
    clock.lap("weigh")

    # 4. Select: per (task, stratum) group, the budgeted instances by partitioned greedy.
    instance_fn = config.instance_fn if config.strategy == "smart" else "random"  # baselines: uniform
    selections = select_sweep(
        spark, instances, [p.group_budgets for p in plans], sizes, fn=instance_fn,
        partition_size=config.partition_size, seed=config.seed, gc_lambda=config.gc_lambda,
        logdet_lambda=config.logdet_lambda, device=config.device)
    failpoint("during_select")
    clock.lap("select")

    # 5. Write: mixture, task_weights, then runs, for every mixture; all or nothing.
    base = {
        "input": config.input, "input_version": input_version, "input_rows": int(means["n"].sum()),
        "num_tasks_total": len(means), "strategy": config.strategy,
        "task_fn": config.task_fn if config.strategy == "smart" else config.strategy,
        "instance_fn": instance_fn, "strata": config.strata if config.stratum_col else None,
        "partition_size": config.partition_size, "seed": config.seed, "embedding_dim": dim,
        "embed_stats": embed_stats, "output": config.output, "stage_seconds": clock.seconds,
    }
    summaries, runs = [], []
    for c, plan, selected in zip(configs, plans, selections):
        summary = {**base, "run_id": c.run_id, "num_instances": c.num_instances,
                   "num_tasks_selected": int(plan.task_weights["selected"].sum()),
                   "mixture_rows": int(sum(plan.group_budgets.values()))}
        frames = {
            "mixture": mixture_frame(prepared, selected, run_id=c.run_id, embedding_col=c.embedding_col),
            "task_weights": task_weights_frame(spark, plan.task_weights, c.run_id),
            "runs": runs_frame(spark, run_id=c.run_id, started_at=started_at,
                               finished_at=datetime.now(timezone.utc), config_json=c.to_json(),
                               input_desc=c.input, input_version=input_version, metrics=summary),
        }
        summaries.append(summary)
        runs.append((c.run_id, frames))
    commit_run(spark, refs, runs, config_json=config.to_json())
    clock.lap("write")
    for selected in selections:
        selected.unpersist()
    instances.unpersist()

    if config.report:
        write_reports(config, refs, summaries, plans, clock.seconds)
    if len(summaries) == 1:
        return summaries[0]
    return {**base, "run_id": config.run_id, "mixtures": summaries}


def write_reports(config: JobConfig, refs: dict[str, delta_io.TableRef], summaries: list[dict],
                  plans: list, seconds: dict[str, float]) -> None:
    """report.md (and the chart) beside the tables, one per mixture of a sweep, and the console text."""
    from smart_spark.report.markdown import format_console, write_report

    local_out = local_path(config.output) if refs["mixture"].path else None
    sweep = len(summaries) > 1
    index = ["# SMART budget sweep: run `" + config.run_id + "`", "",
             "| mixture | M' kept | N' | rows | first task's share before / after capping |",
             "|---|---:|---:|---:|---|"]
    for summary, plan in zip(summaries, plans):
        summary["stage_seconds"] = seconds
        if local_out is not None:
            folder = os.path.join(local_out, "reports", summary["run_id"]) if sweep else local_out
            summary["report_path"], _ = write_report(folder, summary, plan.task_weights)
        print(format_console(summary, plan.task_weights))
        first = plan.task_weights[plan.task_weights["selected"]].sort_values("pick_rank").iloc[0]
        n = summary["num_instances"]
        index.append(f"| `{summary['run_id']}` | {summary['num_tasks_selected']} | {n:,} | "
                     f"{summary['mixture_rows']:,} | `{first['task']}` {first['initial_budget'] / n:.2%} / "
                     f"{first['budget'] / n:.2%} |")
    if sweep and local_out is not None:
        index += ["", "Each mixture's report: `reports/<mixture>/report.md`."]
        with open(os.path.join(local_out, "report.md"), "w", encoding="utf-8") as fh:
            fh.write("\n".join(index) + "\n")
        print("\n".join(index))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, run, and turn any failure into one clear stderr line and a non-zero status."""
    try:
        config = load_config(argv)
    except SmartError as exc:
        print(f"smart_mixture: error: {exc}", file=sys.stderr)
        return 2
    spark = get_spark("smart-mixture")
    try:
        run(spark, config)
    except (SmartError, InjectedFailure) as exc:
        print(f"smart_mixture: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # Spark, I/O, ...: the traceback above, one naming line last
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"smart_mixture: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


def cli() -> None:
    """Console-script entry point (``smart-mixture``): exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
