"""How long ``dbt build`` takes on our models: first build, rerun, one new day.

Generates about ``--size`` of events (1 GB by default, fixed seed) into a
scratch directory and holds back the events of the last day (UTC, by ``ts``).
On one SparkSession and a fresh workdir it then ingests the rest, builds the
dbt project, builds it again with nothing new, ingests the held-back day and
builds once more, the way ``sparkify run`` calls ``dbt_build``. Prints the
seconds of each step, the JSON each ingest read and what Spark read and wrote
on the local disk, row counts of ``raw.events`` and the marts after the first
and the last build, and peak memory (Linux only). Removes the scratch
directory unless ``--keep`` is given. Record figures in BENCHMARKS.md with
the command that produced them.

    .venv/bin/python benchmarks/dbt_build.py --size 1GB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

from pyspark.sql import SparkSession

from sparkify.config import Workdir
from sparkify.generate import generate
from sparkify.ingest import IngestResult, ingest, resolve_inputs
from sparkify.spark import spark_session
from sparkify.transform import DbtOutcome, TransformError, dbt_build

T = TypeVar("T")

TABLES = ("raw.events", "analytics.customer_features", "analytics.churn_labels")
_DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)
# The days a ``date`` can hold; a ``ts`` outside them cannot be dated.
_FIRST_DAY = (date.min - _EPOCH).days
_LAST_DAY = (date.max - _EPOCH).days
_UNDATED = _FIRST_DAY - 1


@dataclass
class Split:
    """Where the lines of the generated logs went."""

    last_day: date | None
    kept_lines: int = 0
    held_back_lines: int = 0
    undated_lines: int = 0


def split_last_day(sources: Sequence[Path], kept_dir: Path, held_back: Path) -> Split:
    """Copy ``sources`` to ``kept_dir`` but for the last day, written to ``held_back``.

    The last day is the latest UTC date of a ``ts`` (epoch milliseconds) in
    any source. Lines that are not JSON objects with a numeric ``ts`` cannot
    be dated and stay with the kept part. Files are read as bytes and split
    on ``\\n`` only: the logs hold names with U+0085, which text mode would
    not split on but ``str.splitlines`` would.
    """
    days = array("i")
    for source in sources:
        with source.open("rb") as lines:
            days.extend(_day_of(line) for line in lines)
    last = max(days, default=_UNDATED)
    split = Split(last_day=None if last == _UNDATED else _date_of(last))

    kept_dir.mkdir(parents=True, exist_ok=True)
    index = 0
    with held_back.open("wb") as back:
        for source in sources:
            with (
                source.open("rb") as lines,
                (kept_dir / source.name).open("wb") as kept,
            ):
                for line in lines:
                    day = days[index]
                    index += 1
                    if not line.endswith(b"\n"):  # a file's last line
                        line += b"\n"
                    if day == last and day != _UNDATED:
                        back.write(line)
                        split.held_back_lines += 1
                    else:
                        kept.write(line)
                        split.kept_lines += 1
                        split.undated_lines += day == _UNDATED
    return split


def _day_of(line: bytes) -> int:
    """Days since 1970-01-01 of the line's ``ts``, or ``_UNDATED``."""
    try:
        event = json.loads(line)
    except ValueError:
        return _UNDATED
    ts = event.get("ts") if isinstance(event, dict) else None
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return _UNDATED
    try:
        day = int(ts // _DAY_MS)
    except (ValueError, OverflowError):  # NaN and Infinity, which json reads
        return _UNDATED
    return day if _FIRST_DAY <= day <= _LAST_DAY else _UNDATED


def _date_of(day: int) -> date:
    return _EPOCH + timedelta(days=day)


@dataclass
class Step:
    name: str
    seconds: float
    disk_read: int | None
    disk_written: int | None
    note: str


@dataclass
class Clock:
    """Times steps and what Spark read and wrote on the local disk meanwhile."""

    spark: SparkSession | None = None
    steps: list[Step] = field(default_factory=list)

    def run(
        self,
        name: str,
        action: Callable[[], T],
        note: Callable[[T], str] = lambda result: "",
    ) -> T:
        """``action()``, timed; a step that raises is recorded as failed."""
        before = self._disk()
        began = time.perf_counter()
        failed = True
        try:
            result = action()
            failed = False
        finally:
            seconds = time.perf_counter() - began
            after = self._disk()
            read, written = (
                (None, None)
                if before is None or after is None
                else (after[0] - before[0], after[1] - before[1])
            )
            text = "failed" if failed else note(result)
            self.steps.append(Step(name, seconds, read, written, text))
        return result

    def _disk(self) -> tuple[int, int] | None:
        """Bytes the JVM's Hadoop ``file:`` filesystem has read and written."""
        if self.spark is None:
            return None
        # Spark has no Python API for these. Local mode runs its executors in
        # the driver JVM, so the global statistics cover every task.
        fs = self.spark._jvm.org.apache.hadoop.fs.FileSystem
        stats = fs.getGlobalStorageStatistics().get("file")
        if stats is None:
            return 0, 0
        return stats.getLong("bytesRead"), stats.getLong("bytesWritten")


def _ingest_note(result: IngestResult) -> str:
    return (
        f"JSON read: {len(result.new_files)} new file(s), {_json_bytes(result):,} "
        f"bytes; {len(result.skipped_files)} already ingested; "
        f"{result.accepted:,} accepted, {result.rejected:,} rejected"
    )


def _json_bytes(result: IngestResult) -> int:
    """Bytes of the files an ingest read: only its new files are read."""
    return sum(Path(path).stat().st_size for path in result.new_files)


def _dbt_note(outcome: DbtOutcome) -> str:
    return (
        f"{outcome.models} models, {outcome.tests_passed} tests passed, "
        f"{len(outcome.warnings)} warnings"
    )


def row_counts(spark: SparkSession) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    for table in TABLES:
        if spark.catalog.tableExists(table):
            spark.catalog.refreshTable(table)
            counts[table] = spark.table(table).count()
        else:
            counts[table] = None
    return counts


def peak_rss() -> dict[str, int]:
    """Peak resident bytes of this process, its finished and its live children.

    ``getrusage`` counts a child only once it has been waited for, so the
    Spark JVM (alive until this process exits) and Spark's Python workers are
    read from /proc (``VmHWM``), summed by program name. Each figure is its
    own peak; they need not have happened at the same time.
    """
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peaks = {
        "this process": self_kib * 1024,
        "largest finished child": children_kib * 1024,
    }
    live: dict[str, list[int]] = {}
    for pid in _children(os.getpid()):
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        if "VmHWM" in fields:
            program = fields["Name"].strip()
            live.setdefault(program, []).append(int(fields["VmHWM"].split()[0]))
    for program, kibs in live.items():
        processes = f"{len(kibs)} process{'es' if len(kibs) > 1 else ''}"
        peaks[f"live {program} ({processes}, summed)"] = sum(kibs) * 1024
    return peaks


def _children(pid: int) -> list[int]:
    """Live descendants of ``pid``, from /proc/<pid>/task/*/children."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        for child in map(int, text.split()):
            found += [child, *_children(child)]
    return found


def benchmark_arguments(description: str) -> argparse.ArgumentParser:
    """The options every benchmark on generated logs takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", default="1GB", help="target size of the logs")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--shards", type=int, default=1, help="generated files")
    parser.add_argument("--scratch", type=Path, default=None, help="where to work")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    return parser


def main() -> None:
    parser = benchmark_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=None, help="default: CPUs")
    parser.add_argument(
        "--master", default=None, help="default: local[*]; disk figures need local mode"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sparkify-dbt-bench-", dir=args.scratch))
    generated_dir = folder / "generated"
    logs_dir = folder / "logs"
    held_back = folder / "held-back" / "events-last-day.jsonl"
    held_back.parent.mkdir()
    workdir = Workdir.at(folder / "work")
    clock = Clock()
    json_reads: list[int] = []
    counts: dict[str, dict[str, int | None]] = {}
    failure: TransformError | None = None
    load_before = os.getloadavg()
    try:
        summary = clock.run(
            "generate",
            lambda: generate(
                generated_dir / "events.jsonl",
                size=args.size,
                days=args.days,
                seed=args.seed,
                shards=args.shards,
                workers=args.workers,
            ),
            lambda summary: f"{summary.events:,} events, {summary.bytes:,} bytes",
        )
        clock.run(
            "split off the last day",
            lambda: split_last_day(summary.paths, logs_dir, held_back),
            lambda split: (
                f"{split.last_day} held back: {split.held_back_lines:,} lines; "
                f"{split.kept_lines:,} kept ({split.undated_lines:,} undated)"
            ),
        )
        shutil.rmtree(generated_dir)

        clock.spark = spark = clock.run(
            "start Spark", lambda: spark_session(workdir, args.master)
        )

        def ingest_logs() -> IngestResult:
            result = ingest(spark, resolve_inputs(logs_dir), workdir)
            if result.new_files:
                json_reads.append(_json_bytes(result))
            return result

        clock.run("ingest (all but the last day)", ingest_logs, _ingest_note)
        clock.run("dbt build (first)", lambda: dbt_build(workdir), _dbt_note)
        counts["after first build"] = row_counts(spark)
        clock.run("dbt build (nothing new)", lambda: dbt_build(workdir), _dbt_note)

        held_back.rename(logs_dir / held_back.name)
        clock.run("ingest (the last day)", ingest_logs, _ingest_note)
        clock.run("dbt build (one new day)", lambda: dbt_build(workdir), _dbt_note)
        counts["after one new day"] = row_counts(spark)
    except TransformError as exc:  # print what was measured before it
        failure = exc
        if clock.spark is not None:
            counts["when it stopped"] = row_counts(clock.spark)
    finally:
        memory = peak_rss()
        if clock.spark is not None:
            clock.spark.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    load_after = os.getloadavg()

    print(f"size target    {args.size}, {args.days} days, seed {args.seed}")
    print(f"load average   {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"scratch        {folder}{'' if args.keep else ' (removed)'}")
    print()
    print(f"{'step':<32}{'seconds':>9}{'disk read':>12}{'written':>12}  what")
    for step in clock.steps:
        print(
            f"{step.name:<32}{step.seconds:>9.1f}{_mb(step.disk_read):>12}"
            f"{_mb(step.disk_written):>12}  {step.note}"
        )
    sizes = ", ".join(f"{size:,}" for size in json_reads) or "none"
    print(
        f"raw JSON reads {len(json_reads)} (ingestion only, one per ingest with "
        f"new files); bytes read: {sizes}"
    )
    print("disk read/written: by Spark through Hadoop's file: filesystem, in MB")
    if counts:
        print()
        print(f"{'rows':<32}" + "".join(f"{label:>20}" for label in counts))
        for table in TABLES:
            cells = (_count(stage.get(table)) for stage in counts.values())
            print(f"{table:<32}" + "".join(f"{cell:>20}" for cell in cells))
    print()
    for name, peak in memory.items():
        print(f"peak RSS       {peak / 2**20:>8,.0f} MiB  {name}")
    if failure is not None:
        print()
        sys.exit(f"stopped: {failure}")


def _mb(count: int | None) -> str:
    return "" if count is None else f"{count / 1e6:,.1f}"


def _count(value: int | None) -> str:
    return "no table" if value is None else f"{value:,}"


if __name__ == "__main__":
    main()
