"""How long training and scoring take, and how good the model is, on one set of logs.

Without ``--input`` it generates about ``--size`` of logs (1 GB, seed 42, 60
days, 2 shards) into a scratch directory. On one SparkSession and a fresh
workdir it then ingests the logs and builds the dbt project (timed, but not
part of the model's budget), trains a challenger the way ``sparkify train``
does (XGBoost and the logistic-regression baseline on the time split, MLflow
logging, promotion) and scores every active customer with reasons and a
suggestion into the serving database the way ``sparkify score`` does. Prints
the seconds of each step, the evaluation report of both models with the
churners behind every figure, and the quality bar: XGBoost above the
baseline on PR-AUC, top-decile lift at least 2, training plus scoring under
3 minutes. Record figures in BENCHMARKS.md with the command that made them.

    .venv/bin/python benchmarks/train_score.py --size 1GB
    .venv/bin/python benchmarks/train_score.py \
        --input ../shared/data/eventsim_small.jsonl.gz
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dbt_build import Clock, peak_rss  # noqa: E402

from ml import format_reports, train  # noqa: E402
from sparkify.config import Workdir  # noqa: E402
from sparkify.generate import generate  # noqa: E402
from sparkify.ingest import ingest, resolve_inputs  # noqa: E402
from sparkify.pipeline import run_scoring  # noqa: E402
from sparkify.spark import spark_session  # noqa: E402
from sparkify.transform import dbt_build  # noqa: E402

BUDGET_SECONDS = 180
MODEL_STEPS = ("train", "score and publish")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=None, help="logs to use instead")
    parser.add_argument("--size", default="1GB", help="target size of the logs")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--shards", type=int, default=2, help="generated files")
    parser.add_argument("--master", default=None, help="default: local[*]")
    parser.add_argument("--scratch", type=Path, default=None, help="where to work")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sparkify-model-bench-", dir=args.scratch))
    workdir = Workdir.at(folder / "work")
    clock = Clock()
    load_before = os.getloadavg()
    load_model = load_before
    outcome = None
    try:
        if args.input:
            files = resolve_inputs(args.input)
        else:
            files = clock.run(
                "generate",
                lambda: generate(
                    folder / "logs" / "events.jsonl",
                    size=args.size,
                    days=args.days,
                    seed=args.seed,
                    shards=args.shards,
                ),
                lambda summary: f"{summary.events:,} events, {summary.bytes:,} bytes",
            ).paths
        clock.spark = spark = clock.run(
            "start Spark", lambda: spark_session(workdir, args.master)
        )
        clock.run(
            "ingest",
            lambda: ingest(spark, files, workdir),
            lambda result: f"{result.accepted:,} events accepted",
        )
        clock.run(
            "dbt build",
            lambda: dbt_build(workdir),
            lambda outcome: f"{outcome.models} models",
        )
        load_model = os.getloadavg()
        outcome = clock.run(
            "train",
            lambda: train(spark, workdir),
            lambda outcome: outcome.decision,
        )
        clock.run(
            "score and publish",
            lambda: run_scoring(workdir, spark=spark),
            lambda summary: f"{summary.scored:,} active customers scored",
        )
    finally:
        memory = peak_rss()
        if clock.spark is not None:
            clock.spark.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    source = args.input or f"generated {args.size}, {args.days} days, seed {args.seed}"
    print(f"logs           {source}")
    print(
        f"load average   {load_before[0]:.2f} before the run, "
        f"{load_model[0]:.2f} before training, {os.getloadavg()[0]:.2f} after"
    )
    print(f"scratch        {folder}{'' if args.keep else ' (removed)'}")
    print()
    print(f"{'step':<20}{'seconds':>9}  what")
    for step in clock.steps:
        print(f"{step.name:<20}{step.seconds:>9.1f}  {step.note}")
    model_seconds = sum(s.seconds for s in clock.steps if s.name in MODEL_STEPS)
    print(f"{'train + score':<20}{model_seconds:>9.1f}  budget {BUDGET_SECONDS} s")
    print()
    if outcome is None or outcome.challenger is None:
        print(outcome.decision if outcome else "no model trained")
        return
    print(format_reports(outcome.reports))
    challenger = outcome.challenger
    print()
    print(
        f"split: fit on {', '.join(challenger.fit_cutoffs)} "
        f"({challenger.train_rows:,} rows with the validation cutoff, "
        f"{challenger.train_positives} churners), validate on "
        f"{challenger.validation_cutoff}, evaluate on {challenger.evaluation_cutoff}; "
        f"best iteration {challenger.best_iteration}, "
        f"{len(challenger.features)} features, {challenger.params['num_workers']} "
        "xgboost workers"
    )
    xgb, baseline = challenger.evaluation, challenger.baseline
    churners = f"{xgb.positives} churners"
    checks = [
        (
            f"XGBoost PR-AUC {_num(xgb.pr_auc)} > baseline {_num(baseline.pr_auc)} "
            f"({churners})",
            (xgb.pr_auc or 0) > (baseline.pr_auc or 0),
        ),
        (
            f"top-10% lift {_num(xgb.top_lift)} >= 2 ({xgb.top_positives} of "
            f"{churners} in the top {xgb.top_rows:,})",
            (xgb.top_lift or 0) >= 2,
        ),
        (
            f"train + score {model_seconds:.0f} s < {BUDGET_SECONDS} s",
            model_seconds < BUDGET_SECONDS,
        ),
    ]
    for text, ok in checks:
        print(f"{'met' if ok else 'NOT MET':>8}  {text}")
    print()
    for name, peak in memory.items():
        print(f"peak RSS       {peak / 2**20:>8,.0f} MiB  {name}")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
