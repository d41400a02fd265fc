"""Ingestion: raw JSON-lines event logs into the ``raw.events`` Parquet table.

Every line read ends up in exactly one of two tables: ``raw.events`` (parsed
with an explicit schema) or ``raw.rejected_events`` (the line as it was, its
file and line number, and the reason). ``raw.ingested_files`` remembers which
files were taken in, so a later run reads only files it has not seen.

A batch is parsed and checked in a scratch directory first; a caller's
``validate`` hook sees its accepted rows before anything is appended, so a
batch that fails it leaves every table as it was and is read again by the
next run. While a batch is being appended a marker names it; a run cut off
there (its cluster went away, the process was killed) leaves the marker, and
the next ingestion first deletes the files that batch wrote, then reads its
files again, so nothing is taken in twice.

Inputs are local paths, or URIs of any file system Hadoop knows
(``hdfs://``, ``s3a://``, ``file://``), listed and read through Spark.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkify.config import Workdir
from sparkify.engine import delete_path

__all__ = [
    "EVENT_KEY",
    "MAX_LINE_CHARS",
    "RAW_SCHEMA",
    "IngestError",
    "IngestResult",
    "LogFile",
    "RemoteFile",
    "is_uri",
    "diagnose_line",
    "ingest",
    "resolve_inputs",
]

log = logging.getLogger(__name__)

RAW_DATABASE = "raw"

# The fields of a Sparkify event as they appear in the logs. Numbers that are
# epoch milliseconds are read as doubles because some exports write them as
# floats (``1540919166796.0``); they are stored as whole milliseconds.
RAW_SCHEMA = T.StructType(
    [
        T.StructField("ts", T.DoubleType()),
        T.StructField("userId", T.StringType()),
        T.StructField("sessionId", T.LongType()),
        T.StructField("page", T.StringType()),
        T.StructField("auth", T.StringType()),
        T.StructField("method", T.StringType()),
        T.StructField("status", T.LongType()),
        T.StructField("level", T.StringType()),
        T.StructField("itemInSession", T.LongType()),
        T.StructField("location", T.StringType()),
        T.StructField("userAgent", T.StringType()),
        T.StructField("lastName", T.StringType()),
        T.StructField("firstName", T.StringType()),
        T.StructField("registration", T.DoubleType()),
        T.StructField("gender", T.StringType()),
        T.StructField("artist", T.StringType()),
        T.StructField("song", T.StringType()),
        T.StructField("length", T.DoubleType()),
    ]
)
_CORRUPT = "_corrupt_record"
_REQUIRED = ("ts", "userId", "sessionId", "page", "auth", "level")
_MILLIS = ("ts", "registration")
_KEEP_CHARS = 10_000
# A Sparkify event is well under 2 KB; a line this long is not one.
MAX_LINE_CHARS = 100_000
_MALFORMED = "malformed"
# Two lines with these fields equal are the same event logged twice.
EVENT_KEY = ("ts", "userId", "sessionId", "itemInSession", "page", "auth")
_UNREADABLE_FILE = re.compile(r"Encountered error while reading file (\S+?)\.?\s")
_LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".gz")


class IngestError(ValueError):
    """The input cannot be ingested at all (nothing found, unreadable path)."""


@dataclass
class IngestResult:
    """What one ingestion took in, and what it turned away."""

    batch_id: str
    new_files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    lines_read: int = 0
    accepted: int = 0
    rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    rejects_path: Path | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class RemoteFile:
    """A log file behind a Hadoop file system URI (``hdfs://``, ``s3a://``...).

    ``uri`` is the URI as Hadoop qualifies it, which is also how Spark names
    the file its rows came from; ``file:`` URIs are named by their path, as
    local files are.
    """

    uri: str
    size_bytes: int
    modified_epoch: int

    def __str__(self) -> str:
        return _local_path_text(self.uri)


LogFile = Path | RemoteFile
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_uri(spec: str | os.PathLike[str]) -> bool:
    """True when ``spec`` names a file system by scheme (``s3a://...``)."""
    return bool(_SCHEME.match(str(spec)))


def resolve_inputs(
    spec: str | os.PathLike[str], spark: SparkSession | None = None
) -> list[LogFile]:
    """The log files named by ``spec``: a file, a directory or a glob.

    A directory yields every non-hidden file below it whose name ends in one
    of .json, .jsonl, .ndjson or .gz. A URI (``hdfs://``, ``s3a://``,
    ``file://``) is listed through Hadoop's file systems and needs ``spark``.
    """
    text = str(spec)
    if is_uri(text):
        if spark is None:
            raise ValueError(f"spark is needed to list {text}; pass the session")
        return _resolve_uri(spark, text)
    path = Path(text).expanduser()
    if path.is_file():
        return [path.resolve()]
    if path.is_dir():
        found = [
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
            and p.name.lower().endswith(_LOG_SUFFIXES)
        ]
        if not found:
            raise IngestError(
                f"--input {text}: the directory holds no log files "
                f"(looked for names ending in {', '.join(_LOG_SUFFIXES)})"
            )
        return sorted(p.resolve() for p in found)
    matches = sorted(Path(m).resolve() for m in glob.glob(os.path.expanduser(text)))
    files = [m for m in matches if m.is_file()]
    if files:
        return files
    raise IngestError(
        f"--input {text}: no such file, directory or glob match; "
        "give a JSON-lines file (plain or .gz), a directory or a quoted glob"
    )


def _resolve_uri(spark: SparkSession, text: str) -> list[LogFile]:
    jvm = spark._jvm
    try:
        pattern = jvm.org.apache.hadoop.fs.Path(text)
        fs = pattern.getFileSystem(spark._jsc.hadoopConfiguration())
        statuses = fs.globStatus(pattern) or []
        found: list[LogFile] = []
        for status in statuses:
            if not status.isDirectory():
                found.append(_remote(status))
                continue
            root = status.getPath().toUri().getPath().rstrip("/") + "/"
            listing = fs.listFiles(status.getPath(), True)
            while listing.hasNext():
                child = listing.next()
                relative = child.getPath().toUri().getPath().removeprefix(root)
                name = child.getPath().getName().lower()
                hidden = any(p.startswith((".", "_")) for p in relative.split("/"))
                if not hidden and name.endswith(_LOG_SUFFIXES):
                    found.append(_remote(child))
    except Py4JJavaError as exc:
        problem = str(exc.java_exception.toString())
        hint = ""
        if "No FileSystem for scheme" in problem:
            hint = (
                "; this Spark has no Hadoop file system for that scheme (for "
                "s3a://, put hadoop-aws and the AWS SDK bundle that match its "
                "Hadoop version on the classpath, as EMR does)"
            )
        raise IngestError(f"--input {text}: cannot list it: {problem}{hint}") from None
    if not found:
        raise IngestError(
            f"--input {text}: no such file, directory or glob match with log "
            f"files (names ending in {', '.join(_LOG_SUFFIXES)})"
        )
    return sorted(found, key=str)


def _remote(status: object) -> RemoteFile:
    return RemoteFile(
        uri=str(status.getPath().toString()),
        size_bytes=int(status.getLen()),
        modified_epoch=int(status.getModificationTime()) // 1000,
    )


def _identity(file: LogFile) -> tuple[int, int]:
    """Size in bytes and modification time (whole seconds) of ``file``."""
    if isinstance(file, RemoteFile):
        return file.size_bytes, file.modified_epoch
    stat = file.stat()
    return stat.st_size, int(stat.st_mtime)


def _uri(file: LogFile) -> str:
    return file.uri if isinstance(file, RemoteFile) else file.as_uri()


def diagnose_line(line: str) -> str:
    """Say, for a line the JSON reader could not use, what is wrong with it."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(value, dict):
        return f"not a JSON object but a {type(value).__name__}"
    for spec in RAW_SCHEMA.fields:
        found = value.get(spec.name)
        if found is None:
            continue
        if isinstance(spec.dataType, T.StringType):
            if isinstance(found, dict | list):
                return f"field '{spec.name}' should be text, got {_kind(found)}"
        elif isinstance(found, bool) or not isinstance(found, int | float):
            return f"field '{spec.name}' should be a number, got {_kind(found)}"
        elif isinstance(spec.dataType, T.LongType) and found != int(found):
            return f"field '{spec.name}' should be a whole number, got {found!r}"
    return "does not fit the event schema"


def _kind(value: object) -> str:
    shown = json.dumps(value, ensure_ascii=False)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{type(value).__name__} {shown}"


def ingest(
    spark: SparkSession,
    inputs: Iterable[LogFile],
    workdir: Workdir,
    *,
    database: str = RAW_DATABASE,
    validate: Callable[[DataFrame], None] | None = None,
) -> IngestResult:
    """Take the files not ingested before into ``<database>.events``.

    ``validate``, when given, is called with the batch's accepted rows (the
    columns of ``RAW_SCHEMA`` plus ``_source_file`` and ``_line_number``)
    before anything is written; if it raises, no table changes and the files
    stay new. Returns counts in which ``lines_read == accepted + rejected``.
    Raises ``IngestError`` when a file cannot be read at all (a truncated
    gzip file, say), naming the file.
    """
    started = time.monotonic()
    result = IngestResult(batch_id=_new_batch_id())
    tables = _Tables(database)
    _ensure_tables(spark, tables)
    marker = workdir.root / "ingest" / f"pending-{database}.json"
    _remove_interrupted_batch(spark, marker, workdir, tables)

    seen = _already_ingested(spark, tables)
    new: list[LogFile] = []
    for path in inputs:
        previous = seen.get(str(path))
        if previous is None:
            new.append(path)
        elif previous == _identity(path):
            result.skipped_files.append(str(path))
        else:
            result.changed_files.append(str(path))
    if result.changed_files:
        log.warning(
            "not ingesting %d file(s) that changed since they were ingested "
            "(new events belong in new files): %s",
            len(result.changed_files),
            ", ".join(result.changed_files),
        )
    result.new_files = [str(p) for p in new]
    log.info(
        "ingesting batch %s: %d new file(s), %d already ingested",
        result.batch_id,
        len(new),
        len(result.skipped_files),
    )
    if not new:
        result.seconds = time.monotonic() - started
        return result

    staging = f"{workdir.scratch_uri}/{result.batch_id}"
    try:
        _parse_to_staging(spark, new, f"{staging}/parsed")
        checked = _check_batch(spark, staging, tables, {str(p): p for p in new})
        if validate is not None:
            validate(_accepted(checked))
        _mark_pending(marker, result.batch_id)
        _publish_batch(spark, checked, new, result, workdir, tables)
        marker.unlink()
    finally:
        delete_path(spark, staging)

    result.seconds = time.monotonic() - started
    log.info(
        "ingested batch %s: %d lines read, %d accepted, %d rejected in %.1fs",
        result.batch_id,
        result.lines_read,
        result.accepted,
        result.rejected,
        result.seconds,
    )
    return result


def _new_batch_id() -> str:
    # Sortable: dbt's incremental models take in batches newer than the
    # newest they have seen, by comparing these strings.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class _Tables:
    database: str

    @property
    def events(self) -> str:
        return f"{self.database}.events"

    @property
    def rejects(self) -> str:
        return f"{self.database}.rejected_events"

    @property
    def files(self) -> str:
        return f"{self.database}.ingested_files"


def _ensure_tables(spark: SparkSession, tables: _Tables) -> None:
    # Asked first: Hive's metastore logs a stack trace for an existing
    # database even under "if not exists".
    if not spark.catalog.databaseExists(tables.database):
        spark.sql(f"create database if not exists {tables.database}")
    spark.sql(
        f"""
        create table if not exists {tables.files} (
            path string, size_bytes bigint, modified_epoch bigint,
            batch_id string, ingested_at timestamp,
            lines_read bigint, accepted bigint, rejected bigint
        ) using parquet
        """
    )
    spark.sql(
        f"""
        create table if not exists {tables.rejects} (
            source_file string, line_number bigint, reason string,
            raw_line string, batch_id string, ingested_at timestamp
        ) using parquet
        """
    )


def _already_ingested(
    spark: SparkSession, tables: _Tables
) -> dict[str, tuple[int, int]]:
    rows = spark.table(tables.files).select("path", "size_bytes", "modified_epoch")
    return {row.path: (row.size_bytes, row.modified_epoch) for row in rows.collect()}


def _reject_reason() -> Column:
    length = F.length("value")
    reason = (
        F.when(F.trim(F.col("value")) == "", F.lit("blank line"))
        .when(
            length > MAX_LINE_CHARS,
            F.format_string(
                f"line is %d characters long; an event is at most {MAX_LINE_CHARS:,}",
                length,
            ),
        )
        .when(
            ~F.is_valid_utf8("value"),
            F.lit(
                "not valid UTF-8 (bytes that are no UTF-8 character); "
                "re-export the file as UTF-8"
            ),
        )
        .when(F.col(f"event.{_CORRUPT}").isNotNull(), F.lit(_MALFORMED))
    )
    for name in _REQUIRED:
        reason = reason.when(
            F.col(f"event.{name}").isNull(), F.lit(f"missing field '{name}'")
        )
    return reason


def _mark_pending(marker: Path, batch_id: str) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"batch_id": batch_id}), encoding="utf-8")


def _remove_interrupted_batch(
    spark: SparkSession, marker: Path, workdir: Workdir, tables: _Tables
) -> None:
    """Undo the appends of a batch whose run stopped before recording its files.

    Each append writes files of its own, so the files holding the batch's
    rows are exactly what it added; deleting them (again, if a repair was
    itself cut off) is safe. A batch whose files were recorded is complete.
    """
    if not marker.exists():
        return
    batch_id = json.loads(marker.read_text(encoding="utf-8"))["batch_id"]
    if spark.table(tables.files).where(F.col("batch_id") == batch_id).count():
        marker.unlink()
        return
    removed = 0
    for table, column in ((tables.events, "_batch_id"), (tables.rejects, "batch_id")):
        written = (
            spark.table(table)
            .where(F.col(column) == batch_id)
            .select(F.col("_metadata.file_path").alias("path"))
            .distinct()
            .collect()
        )
        for row in written:
            delete_path(spark, row.path)
        removed += len(written)
        spark.catalog.refreshTable(table)
    (workdir.reports / "rejects" / f"{batch_id}.jsonl").unlink(missing_ok=True)
    log.warning(
        "removed %d file(s) of batch %s, which the last run appended to %s but "
        "did not finish recording; its input files are read again",
        removed,
        batch_id,
        tables.database,
    )
    marker.unlink()


def _parse_to_staging(spark: SparkSession, files: list[LogFile], staging: str) -> None:
    """One scan of the raw text: parse every line and note why it is rejected."""
    schema = T.StructType([*RAW_SCHEMA.fields, T.StructField(_CORRUPT, T.StringType())])
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}
    # One file per read partition, so a row's index within its partition is
    # its line number within the file (or within the file's split).
    previous_open_cost = spark.conf.get("spark.sql.files.openCostInBytes")
    spark.conf.set(
        "spark.sql.files.openCostInBytes",
        spark.conf.get("spark.sql.files.maxPartitionBytes"),
    )
    try:
        lines = spark.read.text([_uri(p) for p in files]).select(
            "value",
            F.col("_metadata.file_path").alias("source_file"),
            F.col("_metadata.file_block_start").alias("block_start"),
            (
                F.monotonically_increasing_id().bitwiseAND(F.lit((1 << 33) - 1)) + 1
            ).alias("line_in_block"),
        )
        parsed = lines.withColumn("event", F.from_json("value", schema, options))
        parsed = parsed.withColumn("reject_reason", _reject_reason())
        parsed.select(
            "source_file",
            "block_start",
            "line_in_block",
            "reject_reason",
            F.when(
                F.col("reject_reason").isNotNull(),
                # Bytes that are no UTF-8 become U+FFFD, so the kept text
                # can be read anywhere.
                F.substring(F.make_valid_utf8("value"), 1, _KEEP_CHARS),
            ).alias("raw_line"),
            *[
                F.col(f"event.{f.name}").cast("bigint").alias(f.name)
                if f.name in _MILLIS
                else F.col(f"event.{f.name}")
                for f in RAW_SCHEMA.fields
            ],
        ).write.mode("overwrite").parquet(staging)
    # A failed write surfaces as the JVM's own error, not PySpark's.
    except (PySparkException, Py4JJavaError) as exc:
        raise _unreadable(exc) from exc
    finally:
        spark.conf.set("spark.sql.files.openCostInBytes", previous_open_cost)


def _unreadable(exc: Exception) -> Exception:
    """An ``IngestError`` naming the file Spark could not read, else ``exc``."""
    text = str(exc)
    found = _UNREADABLE_FILE.search(text)
    if not found:
        return exc
    path = _local_path_text(found.group(1))
    if "Unexpected end of input stream" in text or "EOFException" in text:
        problem = (
            "it ends before its last gzip block (truncated or still being written)"
        )
    elif any(
        sign in text
        for sign in ("not a gzip file", "Not in GZIP format", "incorrect header check")
    ):
        problem = "its name ends in .gz but it is not gzip-compressed"
    else:
        problem = "Spark could not read it (see logs/sparkify.log)"
    return IngestError(
        f"cannot read log file {path}: {problem}. Nothing from this batch was "
        "taken in; replace or remove the file and run again."
    )


def _check_batch(
    spark: SparkSession,
    staging: str,
    tables: _Tables,
    files: dict[str, LogFile],
) -> DataFrame:
    """Give every parsed row its line number and reject duplicated events.

    A line repeating an event of the same batch, or one already in
    ``tables.events``, is rejected with a reason naming the first copy.
    Writes ``staging/checked`` and returns it.
    """
    parsed = spark.read.parquet(f"{staging}/parsed").withColumn(
        "source_file", _local_path(F.col("source_file"))
    )
    parsed = _with_line_numbers(spark, parsed, files)
    candidates = parsed.where(F.col("reject_reason").isNull())

    in_batch = (
        candidates.groupBy(*EVENT_KEY)
        .agg(
            F.count(F.lit(1)).alias("_copies"),
            F.min(F.struct("source_file", "line_number")).alias("_first"),
        )
        .where("_copies > 1")
        .drop("_copies")
    )
    flagged = _join_on_key(parsed, in_batch)
    if spark.catalog.tableExists(tables.events):
        # Only the days this batch has events on can hold its duplicates.
        dates = [
            row.event_date
            for row in candidates.select(
                F.to_date(F.timestamp_millis("ts")).alias("event_date")
            )
            .distinct()
            .collect()
        ]
        existing = (
            spark.table(tables.events)
            .where(F.col("event_date").isin(dates))
            .select(*EVENT_KEY)
            .distinct()
            .withColumn("_seen", F.lit(True))
        )
        flagged = _join_on_key(flagged, existing)
    else:
        flagged = flagged.withColumn("_seen", F.lit(None).cast("boolean"))
    first = F.col("_first")
    is_later_copy = first.isNotNull() & (
        (first.source_file != F.col("source_file"))
        | (first.line_number != F.col("line_number"))
    )
    reason = (
        F.when(F.col("reject_reason").isNotNull(), F.col("reject_reason"))
        .when(
            F.col("_seen"),
            F.lit(
                "duplicate of an event already ingested (same "
                + ", ".join(EVENT_KEY)
                + ")"
            ),
        )
        .when(
            is_later_copy,
            F.format_string(
                "duplicate of line %d of %s", first.line_number, first.source_file
            ),
        )
    )
    checked = f"{staging}/checked"
    # Only lines rejected while parsing kept their text; a duplicate keeps
    # the event as parsed (its first copy is in the file and in events).
    event_json = F.to_json(F.struct(*[f.name for f in RAW_SCHEMA.fields]))
    raw_line = F.when(
        F.col("raw_line").isNull() & reason.isNotNull(), event_json
    ).otherwise(F.col("raw_line"))
    replaced = ("_first", "_seen", "raw_line", "reject_reason")
    flagged.select(
        *[c for c in flagged.columns if c not in replaced],
        reason.alias("reject_reason"),
        raw_line.alias("raw_line"),
    ).write.mode("overwrite").parquet(checked)
    return spark.read.parquet(checked)


def _join_on_key(rows: DataFrame, other: DataFrame) -> DataFrame:
    """Left join on ``EVENT_KEY``, nulls equal to nulls."""
    other = other.select(
        *[F.col(name).alias(f"_key_{name}") for name in EVENT_KEY],
        *[name for name in other.columns if name not in EVENT_KEY],
    )
    condition = [rows[name].eqNullSafe(other[f"_key_{name}"]) for name in EVENT_KEY]
    joined = rows.join(other, condition, "left")
    return joined.drop(*[f"_key_{name}" for name in EVENT_KEY])


def _accepted(checked: DataFrame) -> DataFrame:
    """The rows of a checked batch that go to ``events``, with their lineage."""
    return checked.where(F.col("reject_reason").isNull()).select(
        *[f.name for f in RAW_SCHEMA.fields],
        F.col("source_file").alias("_source_file"),
        F.col("line_number").alias("_line_number"),
    )


def _publish_batch(
    spark: SparkSession,
    checked: DataFrame,
    files: list[LogFile],
    result: IngestResult,
    workdir: Workdir,
    tables: _Tables,
) -> None:
    ingested_at = F.lit(datetime.now(UTC)).cast("timestamp")
    batch = F.lit(result.batch_id)

    accepted = checked.where(F.col("reject_reason").isNull())
    accepted.select(
        *[f.name for f in RAW_SCHEMA.fields],
        F.col("source_file").alias("_source_file"),
        batch.alias("_batch_id"),
        ingested_at.alias("_ingested_at"),
        # Partitioned by event day (UTC), so dbt's staging model reads only
        # the days a new batch touched.
        F.to_date(F.timestamp_millis("ts")).alias("event_date"),
    ).write.mode("append").format("parquet").partitionBy("event_date").saveAsTable(
        tables.events
    )

    counts = (
        checked.groupBy("source_file", F.col("reject_reason").isNotNull().alias("bad"))
        .count()
        .collect()
    )
    per_file: dict[str, list[int]] = {str(p): [0, 0] for p in files}
    for row in counts:
        per_file.setdefault(row.source_file, [0, 0])
        per_file[row.source_file][row.bad] += row["count"]
    result.accepted = sum(a for a, _ in per_file.values())
    result.rejected = sum(r for _, r in per_file.values())
    result.lines_read = result.accepted + result.rejected

    if result.rejected:
        _write_rejects(spark, checked, result, workdir, ingested_at, tables)
    _record_files(spark, files, per_file, result, tables)


def _local_path(uri: Column) -> Column:
    return F.regexp_replace(uri, r"^file:(//)?", "")


def _local_path_text(uri: str) -> str:
    return re.sub(r"^file:(//)?", "", uri)


def _write_rejects(
    spark: SparkSession,
    checked: DataFrame,
    result: IngestResult,
    workdir: Workdir,
    ingested_at: Column,
    tables: _Tables,
) -> None:
    diagnose = F.udf(lambda line: diagnose_line(line or ""), T.StringType())
    reason = F.when(
        F.col("reject_reason") == _MALFORMED, diagnose(F.col("raw_line"))
    ).otherwise(F.col("reject_reason"))
    rows = (
        checked.where(F.col("reject_reason").isNotNull())
        .select(
            "source_file",
            "line_number",
            reason.alias("reason"),
            "raw_line",
            F.lit(result.batch_id).alias("batch_id"),
            ingested_at.alias("ingested_at"),
        )
        .cache()
    )
    rows.write.mode("append").format("parquet").saveAsTable(tables.rejects)
    result.rejects_path = workdir.reports / "rejects" / f"{result.batch_id}.jsonl"
    _write_jsonl(rows.orderBy("source_file", "line_number"), result.rejects_path)
    result.rejects_by_reason = {
        row.reason: row["count"] for row in rows.groupBy("reason").count().collect()
    }
    rows.unpersist()


def _with_line_numbers(
    spark: SparkSession, parsed: DataFrame, files: dict[str, LogFile]
) -> DataFrame:
    """Add ``line_number``: the row's line in its file, from 1.

    A row knows its line within the split Spark read it from; a split that
    does not start its file adds the lines before it, counted once per file
    on the driver (gzip files are never split, so they cost nothing).
    """
    splits: dict[str, list[int]] = {}
    for row in (
        parsed.where("block_start > 0")
        .select("source_file", "block_start")
        .distinct()
        .collect()
    ):
        splits.setdefault(row.source_file, []).append(row.block_start)
    offsets = spark.createDataFrame(
        [
            (path, start, before)
            for path, starts in splits.items()
            for start, before in _lines_before(
                spark, files.get(path, Path(path)), starts
            ).items()
        ],
        "source_file string, block_start bigint, lines_before bigint",
    )
    return (
        parsed.join(F.broadcast(offsets), ["source_file", "block_start"], "left")
        .withColumn(
            "line_number",
            F.coalesce("lines_before", F.lit(0)) + F.col("line_in_block"),
        )
        .drop("lines_before", "block_start", "line_in_block")
    )


def _lines_before(
    spark: SparkSession, path: LogFile, offsets: list[int]
) -> dict[int, int]:
    """For each split start in ``offsets``, the lines of ``path`` before it.

    Hadoop's line reader leaves a line that starts at or before the split's
    first byte to the previous split: every newline before the offset ends
    one. One pass over the file serves every offset.
    """
    counts: dict[int, int] = {}
    seen, position = 0, 0
    with _open_bytes(spark, path) as handle:
        for offset in sorted(offsets):
            while position < offset:
                chunk = handle.read(min(offset - position, 1 << 24))
                if not chunk:
                    break
                seen += chunk.count(b"\n")
                position += len(chunk)
            # The line that starts at or before the offset went to the
            # previous split too.
            counts[offset] = seen + 1
    return counts


class _HadoopReader:
    """``read(n)`` on a Hadoop input stream, for :func:`_lines_before`."""

    def __init__(self, spark: SparkSession, uri: str) -> None:
        path = spark._jvm.org.apache.hadoop.fs.Path(uri)
        fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
        self._stream = fs.open(path)

    def read(self, size: int) -> bytes:
        return bytes(self._stream.readNBytes(size))

    def __enter__(self) -> _HadoopReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


def _open_bytes(spark: SparkSession, file: LogFile) -> BinaryIO | _HadoopReader:
    if isinstance(file, RemoteFile):
        return _HadoopReader(spark, file.uri)
    return file.open("rb")


def _write_jsonl(rows: DataFrame, path: Path) -> None:
    """A copy of the rejects a person can open without Spark."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows.toLocalIterator():
            record = row.asDict()
            record["ingested_at"] = record["ingested_at"].isoformat()
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _record_files(
    spark: SparkSession,
    files: list[LogFile],
    per_file: dict[str, list[int]],
    result: IngestResult,
    tables: _Tables,
) -> None:
    now = datetime.now(UTC)
    records = []
    for path in files:
        size, modified = _identity(path)
        accepted, rejected = per_file.get(str(path), [0, 0])
        records.append(
            (
                str(path),
                size,
                modified,
                result.batch_id,
                now,
                accepted + rejected,
                accepted,
                rejected,
            )
        )
    schema = spark.table(tables.files).schema
    spark.createDataFrame(records, schema).write.mode("append").insertInto(tables.files)
