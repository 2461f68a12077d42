"""Export one run of the ``mixture`` table as training files: shuffled, sharded JSON Lines and/or Parquet.

The order is a pure function of the seed and the ids, whatever the partitioning: rows sort by
``sha2(concat(seed, ':shuffle:', id), 256)``, then ``id``; that position is ``shuffle_rank`` (0-based) and
row ``shuffle_rank`` goes to shard ``shuffle_rank mod N``, so shards differ in size by at most one row and
each holds its rows in shuffle order.

Everything runs in Spark (DataFrame API only, so Spark Connect works too). The rank is computed without
a global sort on one task: the first four hex digits of the hash split the rows into up to 65,536
buckets; a small aggregate gives each bucket's offset, and a window per bucket numbers its rows. Spark
then writes one file per shard (the rows of a shard go to one task) into a staging folder under the
destination, and the driver only renames those files and writes ``manifest.json`` (last: an export
without one is incomplete). The driver never holds rows.

Layout under ``dest``::

    train-00000-of-00004.jsonl ...          {"prompt": ..., "response": ...} or {"messages": [...]}
    parquet/train-00000-of-00004.parquet ...  every mixture column, in shuffle order, plus shuffle_rank
    manifest.json
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from smart_spark.delta import delta_io
from smart_spark.delta.refs import path_under
from smart_spark.errors import SmartError

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, SparkSession

FORMATS = ("jsonl", "parquet", "both")
RANK_COL = "shuffle_rank"
MANIFEST = "manifest.json"
PARQUET_DIR = "parquet"
_SHARD = "smartspark_shard"  # partition column of the staged write; never in the files
_KEY = "_smartspark_shuffle_key"
_BUCKET = "_smartspark_bucket"
_COUNT = "_smartspark_count"
_OFFSET = "_smartspark_offset"
_STAGING = "_smartspark-export-"  # leading underscore: Spark and most readers skip it
_BUCKET_HEX_DIGITS = 4  # 16**4 = 65,536 buckets at most
SHUFFLE_RULE = "order by sha2(concat(seed, ':shuffle:', id), 256), id; shard = shuffle_rank mod shards"
_TRAIN_FILE = re.compile(r"train-\d{5,}-of-\d{5,}\.(jsonl|parquet)")


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; the flags of ``jobs/export_mixture.py``."""

    output: str
    run_id: str
    dest: str
    format: str = "jsonl"
    chat: bool = False
    shards: int = 1
    seed: int = 23
    prompt_col: str = "prompt"
    response_col: str = "response"
    system: str | None = None
    overwrite: bool = False
    messages_col: str = "messages"

    def validate(self) -> None:
        """SmartError for a bad combination of options, before any Spark work."""
        if self.format not in FORMATS:
            raise SmartError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.shards < 1:
            raise SmartError(f"--shards must be at least 1, got {self.shards}")
        if self.system is not None and not self.chat:
            raise SmartError("--system needs --chat (the plain format has no system message)")
        if not self.run_id:
            raise SmartError("--run-id is required")
        if not self.dest:
            raise SmartError("--dest is required")


def shard_name(shard: int, shards: int, extension: str) -> str:
    """``train-00003-of-00008.jsonl``: the Hugging Face naming of shard files."""
    width = max(5, len(str(shards)))
    return f"train-{shard:0{width}d}-of-{shards:0{width}d}.{extension}"


def shard_sizes(rows: int, shards: int) -> list[int]:
    """Rows per shard when row ``r`` goes to shard ``r mod shards``."""
    return [rows // shards + (1 if shard < rows % shards else 0) for shard in range(shards)]


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def with_shuffle_rank(df: DataFrame, seed: int) -> DataFrame:
    """``df`` plus ``shuffle_rank`` (long, 0-based): its position when sorted by (sha2(seed:shuffle:id), id).

    ``df`` needs a string ``id`` column; ids should be unique (the mixture's are), or rows sharing one
    are ordered arbitrarily.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ident = F.coalesce(F.col("id").cast("string"), F.lit(""))
    key = F.sha2(F.concat(F.lit(f"{int(seed)}:shuffle:"), ident), 256)
    keyed = df.withColumn(_KEY, key).withColumn(
        _BUCKET, F.conv(F.substring(F.col(_KEY), 1, _BUCKET_HEX_DIGITS), 16, 10).cast("int")
    )
    # Bucket order is key order (a hex prefix), so a bucket's offset is the size of the buckets before it.
    # One window over at most 65,536 count rows (partitioned by a constant: the same, minus Spark's warning).
    before = Window.partitionBy(F.lit(0)).orderBy(_BUCKET).rowsBetween(Window.unboundedPreceding, -1)
    offsets = (
        keyed.groupBy(_BUCKET)
        .agg(F.count(F.lit(1)).alias(_COUNT))
        .select(_BUCKET, F.coalesce(F.sum(_COUNT).over(before), F.lit(0)).alias(_OFFSET))
    )
    within = F.row_number().over(Window.partitionBy(_BUCKET).orderBy(_KEY, "id"))
    return (
        keyed.join(F.broadcast(offsets), _BUCKET)
        .withColumn(RANK_COL, (F.col(_OFFSET) + within - 1).cast("long"))
        .select(*(_q(c) for c in df.columns), RANK_COL)
    )


def _text_column(df: DataFrame, name: str, flag: str) -> None:
    kind = df.schema[name].dataType.typeName()
    if kind not in ("string", "varchar", "char"):
        raise SmartError(f"{flag} column {name!r} is {kind}, not a string")


def _json_frame(ranked: DataFrame, options: ExportOptions) -> tuple[DataFrame, list[str]]:
    """The JSON Lines objects as columns (plus rank and shard); the keys each line holds."""
    from pyspark.sql import functions as F

    if options.chat and options.messages_col in ranked.columns:  # chat input: its turns, unchanged
        frame = ranked.select(F.col(_q(options.messages_col)).alias("messages"), RANK_COL, _SHARD)
        return frame, ["messages"]
    prompt = F.col(_q(options.prompt_col)).cast("string")
    response = F.col(_q(options.response_col)).cast("string")
    if options.chat:
        turns = [] if options.system is None else [F.struct(F.lit("system").alias("role"),
                                                            F.lit(options.system).alias("content"))]
        turns += [
            F.struct(F.lit("user").alias("role"), prompt.alias("content")),
            F.struct(F.lit("assistant").alias("role"), response.alias("content")),
        ]
        columns = [F.array(*turns).alias("messages")]
    else:
        columns = [prompt.alias("prompt"), response.alias("response")]
    frame = ranked.select(*columns, RANK_COL, _SHARD)
    return frame, [c for c in frame.columns if c not in (RANK_COL, _SHARD)]


def _filesystem(dest: str) -> tuple[pafs.FileSystem, str, str]:
    """(pyarrow file system, the destination as that file system names it, as Spark should name it)."""
    import pyarrow.fs as pafs

    if dest.startswith("file:"):
        dest = unquote(urlparse(dest).path)
    if "://" in dest:
        fs, base = pafs.FileSystem.from_uri(dest)
        return fs, base.rstrip("/"), dest.rstrip("/")
    local = os.path.abspath(dest)
    # Unity Catalog volumes: the same path for Spark and the driver's file APIs.
    spark_path = local if local.startswith("/Volumes/") else "file://" + local
    return pafs.LocalFileSystem(), local, spark_path


def _previous_export(fs: pafs.FileSystem, base: str) -> list[str]:
    """The files of an earlier export in ``base``: its manifest and train-* shards (nothing else)."""
    import pyarrow.fs as pafs

    found = []
    for folder in (base, f"{base}/{PARQUET_DIR}"):
        for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            if info.is_file and (_TRAIN_FILE.fullmatch(info.base_name) or (
                    folder == base and info.base_name == MANIFEST)):
                found.append(info.path)
    return sorted(found)


def _staged_files(fs: pafs.FileSystem, stage: str, extension: str) -> dict[int, str]:
    """Shard number -> the one data file Spark wrote for it under ``stage``."""
    import pyarrow.fs as pafs

    files: dict[int, str] = {}
    for info in fs.get_file_info(pafs.FileSelector(stage, recursive=True, allow_not_found=True)):
        if not info.is_file or info.base_name[0] in "._" or not info.base_name.endswith(extension):
            continue
        folder = info.path.rsplit("/", 2)[-2]
        shard = int(folder.partition("=")[2])
        if shard in files:
            raise SmartError(f"Spark wrote more than one file for shard {shard} under {stage}")
        files[shard] = info.path
    return files


def _write_shards(
    frame: DataFrame, fs: pafs.FileSystem, stage: str, spark_stage: str, writer_format: str,
    target: str, shards: int, rows: int, extension: str,
) -> list[str]:
    """Spark writes one file per shard into ``stage``; each moves to ``target/train-*``; returns those."""
    import pyarrow.parquet as pq

    ordered = frame.repartition(shards, _SHARD).sortWithinPartitions(_SHARD, RANK_COL)
    if writer_format == "json":
        ordered = ordered.drop(RANK_COL)
    writer = (
        ordered.write.mode("error")  # "errorifexists": not over Spark Connect
        .option("maxRecordsPerFile", 0)  # one file per shard, whatever the session sets
        .option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .partitionBy(_SHARD)
    )
    if writer_format == "json":
        writer.option("ignoreNullFields", "false").json(spark_stage)  # JSON's default: uncompressed
    else:
        writer.parquet(spark_stage)
    staged = _staged_files(fs, stage, extension)
    if len(staged) != min(rows, shards):
        raise SmartError(f"expected {min(rows, shards)} *{extension} files from Spark under {stage}, "
                         f"found {len(staged)} (a compression codec set for the session?)")
    empty_schema = None
    if writer_format != "json" and len(staged) < shards:  # read before the files move
        empty_schema = pq.read_schema(next(iter(staged.values())), filesystem=fs)
    fs.create_dir(target, recursive=True)
    paths = []
    for shard in range(shards):
        path = f"{target}/{shard_name(shard, shards, 'jsonl' if writer_format == 'json' else 'parquet')}"
        if shard in staged:
            fs.move(staged[shard], path)
        elif writer_format == "json":  # more shards than rows: an empty shard is an empty file
            with fs.open_output_stream(path):
                pass
        else:
            pq.write_table(empty_schema.empty_table(), path, filesystem=fs)
        paths.append(path)
    return paths


def run_rows(
    spark: SparkSession, output: str, run_id: str
) -> tuple[DataFrame, delta_io.TableRef, int | None]:
    """The run's rows of the ``mixture`` table at its latest version (pinned), the table, and that version.

    SmartError when there is no table or the run has no rows there (listing the runs it has).
    """
    from pyspark.sql import functions as F

    ref = delta_io.output_tables(output)["mixture"]
    version = delta_io.version(spark, ref)
    if version is None:
        raise SmartError(f"--output {output}: no mixture table at {ref}")
    table = delta_io.read(spark, ref, version=version)
    if "run_id" not in table.columns or "id" not in table.columns:
        raise SmartError(f"{ref}: not a mixture table (no run_id or id column)")
    rows = table.where(F.col("run_id") == F.lit(run_id))
    if rows.limit(1).count() == 0:
        present = [r[0] for r in table.select("run_id").distinct().orderBy("run_id").limit(101).collect()]
        listed = ", ".join(map(str, present[:100])) + (", ..." if len(present) > 100 else "")
        raise SmartError(f"--run-id {run_id!r} has no rows in {ref}; runs present: {listed or 'none'}")
    return rows, ref, version


def export_mixture(spark: SparkSession, options: ExportOptions) -> dict[str, Any]:
    """Write the run's shuffled shards and ``manifest.json`` under ``options.dest``; returns the manifest."""
    import pyarrow.fs as pafs
    from pyspark.sql import functions as F

    options.validate()
    rows, ref, version = run_rows(spark, options.output, options.run_id)
    columns = rows.columns
    want_json = options.format in ("jsonl", "both")
    want_parquet = options.format in ("parquet", "both")
    chat_input = options.chat and options.messages_col in columns
    if chat_input:
        if options.system is not None:
            raise SmartError(f"--system: the mixture's {options.messages_col!r} column is written back "
                             "unchanged; it cannot take another system message")
        dtype = rows.schema[options.messages_col].dataType.simpleString()
        if not dtype.startswith("array<struct<"):
            raise SmartError(f"--messages-col {options.messages_col!r} is {dtype}, not an array of turns")
    if want_json and not chat_input:
        missing = [f"{flag} {name!r}" for flag, name in (("--prompt-col", options.prompt_col),
                                                       ("--response-col", options.response_col))
                   if name not in columns]
        if missing:
            raise SmartError(f"{ref}: no column(s) {', '.join(missing)}; columns: {', '.join(columns)}")
        _text_column(rows, options.prompt_col, "--prompt-col")
        _text_column(rows, options.response_col, "--response-col")
    if want_parquet and RANK_COL in columns:
        raise SmartError(f"{ref}: the mixture already has a column {RANK_COL!r}; Parquet export would clash")

    fs, base, spark_base = _filesystem(options.dest)
    local = isinstance(fs, pafs.LocalFileSystem)  # resolve symbolic links there; elsewhere compare names
    path_under(base, PARQUET_DIR, resolve=local)  # before an earlier export's files there are listed
    previous = _previous_export(fs, base)
    if previous and not options.overwrite:
        raise SmartError(f"--dest {options.dest} already holds an export ({len(previous)} files); "
                         "pass --overwrite to replace it")

    total = rows.count()
    ranked = with_shuffle_rank(rows, options.seed).withColumn(
        _SHARD, F.pmod(F.col(RANK_COL), F.lit(options.shards)).cast("int"))
    token = f"{_STAGING}{uuid.uuid4().hex}"
    stage, spark_stage = f"{base}/{token}", f"{spark_base}/{token}"
    json_keys: list[str] = []
    written: list[tuple[str, str]] = []  # (format, path)
    try:
        if want_parquet:
            parquet = ranked.select(*(_q(c) for c in columns), RANK_COL, _SHARD)
            for path in _write_shards(parquet, fs, f"{stage}/parquet", f"{spark_stage}/parquet", "parquet",
                                      f"{stage}/out/{PARQUET_DIR}", options.shards, total, ".parquet"):
                written.append(("parquet", path))
        if want_json:
            frame, json_keys = _json_frame(ranked, options)
            for path in _write_shards(frame, fs, f"{stage}/jsonl", f"{spark_stage}/jsonl", "json",
                                      f"{stage}/out", options.shards, total, ".json"):
                written.append(("jsonl", path))
        # Everything is written: replace the previous export, then the manifest marks the new one complete.
        for path in previous:
            fs.delete_file(path)
        sizes = shard_sizes(total, options.shards)
        files = []
        for kind, path in written:
            relative = path[len(f"{stage}/out/"):]
            final = path_under(base, relative, resolve=local)
            fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
            fs.move(path, final)
            shard = int(relative.rsplit("/", 1)[-1].split("-")[1])
            files.append({"path": relative, "format": kind, "shard": shard, "rows": sizes[shard]})
        manifest = {
            "run_id": options.run_id,
            "rows": total,
            "shards": options.shards,
            "seed": options.seed,
            "format": options.format,
            "chat": options.chat,
            "system": options.system,
            "prompt_col": options.prompt_col,
            "response_col": options.response_col,
            "source": {"table": str(ref), "version": version},
            "shuffle": SHUFFLE_RULE,
            "files": files,
            "columns": {
                **({"jsonl": json_keys} if want_json else {}),
                **({"parquet": [*columns, RANK_COL]} if want_parquet else {}),
            },
        }
        with fs.open_output_stream(path_under(base, MANIFEST, resolve=local)) as out:
            out.write((json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
        return manifest
    finally:
        if fs.get_file_info(stage).type != pafs.FileType.NotFound:
            fs.delete_dir(stage)
