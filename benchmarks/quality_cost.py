"""What the quality gates cost a whole run: validation seconds against the rest.

Generates about ``--size`` of events (1 GB by default, fixed seed), holds back
the events of the last day, and on one SparkSession and a fresh workdir runs
the pipeline twice, exactly as ``sparkify run`` does: first on everything but
the last day, then again once the last day has arrived (only that day is new).
For each run it prints the seconds of every step, the seconds of every
quality gate (the events suite on the new batch, the feature mart, the
labels, the scores) and the share validation adds to the rest of the run:
``validation / (wall time - validation)``. Removes the scratch directory
unless ``--keep`` is given. Record figures in BENCHMARKS.md with the command
that produced them.

    .venv/bin/python benchmarks/quality_cost.py --size 1GB --shards 2
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from dbt_build import benchmark_arguments, peak_rss, split_last_day

from sparkify.config import Workdir
from sparkify.generate import generate
from sparkify.pipeline import RunSummary, run_pipeline
from sparkify.spark import spark_session


def _timed_run(label: str, logs: Path, workdir: Workdir, spark) -> RunSummary:
    began = time.perf_counter()
    summary = run_pipeline(str(logs), workdir, spark=spark)
    wall = time.perf_counter() - began
    reports = summary.quality_reports
    validation = sum(report.seconds for report in reports)
    rest = wall - validation
    ingest = summary.ingest
    print(f"\n{label}")
    print(
        f"  events        {ingest.lines_read:,} read, {ingest.accepted:,} accepted, "
        f"{ingest.rejected:,} rejected"
    )
    print(f"  {'step':<22}{'seconds':>9}")
    for name, seconds in summary.seconds.items():
        print(f"  {name:<22}{seconds:>9.1f}")
    print(f"  {'wall time':<22}{wall:>9.1f}")
    print(f"  {'gate':<22}{'seconds':>9}  expectations")
    for report in reports:
        print(
            f"  {report.table:<22}{report.seconds:>9.1f}  "
            f"{len(report.outcomes)} expectations, "
            f"{sum(o.success for o in report.outcomes)} passed"
        )
    print(f"  {'validation in all':<22}{validation:>9.1f}")
    print(
        f"  validation adds {validation / rest:.1%} to the {rest:.1f} s the run "
        f"spends on everything else ({validation / wall:.1%} of its wall time)"
    )
    return summary


def main() -> None:
    parser = benchmark_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--master", default=None, help="default: local[*]")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sparkify-quality-bench-", dir=args.scratch))
    generated_dir = folder / "generated"
    logs_dir = folder / "logs"
    held_back = folder / "held-back" / "events-last-day.jsonl"
    held_back.parent.mkdir()
    workdir = Workdir.at(folder / "work").create()
    load_before = os.getloadavg()
    spark = None
    try:
        summary = generate(
            generated_dir / "events.jsonl",
            size=args.size,
            days=args.days,
            seed=args.seed,
            shards=args.shards,
        )
        split = split_last_day(summary.paths, logs_dir, held_back)
        shutil.rmtree(generated_dir)
        print(f"size target    {args.size}, {args.days} days, seed {args.seed}")
        print(
            f"generated      {summary.events:,} events, {summary.bytes:,} bytes; "
            f"{split.last_day} held back ({split.held_back_lines:,} lines)"
        )
        print(f"load average   {load_before[0]:.2f} before the runs")

        spark = spark_session(workdir, args.master)
        _timed_run("run 1: all but the last day", logs_dir, workdir, spark)
        held_back.rename(logs_dir / held_back.name)
        _timed_run("run 2: the last day arrives", logs_dir, workdir, spark)
    finally:
        memory = peak_rss()
        if spark is not None:
            spark.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average   {os.getloadavg()[0]:.2f} after the runs")
    print(f"scratch        {folder}{'' if args.keep else ' (removed)'}")
    for name, peak in memory.items():
        print(f"peak RSS       {peak / 2**20:>8,.0f} MiB  {name}")


if __name__ == "__main__":
    main()
