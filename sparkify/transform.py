"""Run the project's dbt models and tests in this process, on its SparkSession."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sparkify.config import WORKDIR_ENV, Workdir

__all__ = ["PROJECT_DIR", "DbtOutcome", "TransformError", "dbt_build", "dbt_invoke"]

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[1]
PROFILES_DIR = PROJECT_DIR / "profiles"
TARGET_ENV = "SPARKIFY_DBT_TARGET"


class TransformError(RuntimeError):
    """dbt could not build the models, or one of its tests failed."""


@dataclass
class DbtOutcome:
    """What one dbt command (``dbt build`` mostly) did."""

    models: int = 0
    tests_passed: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def dbt_build(
    workdir: Workdir,
    *,
    target: str | None = None,
    variables: Mapping[str, object] | None = None,
    select: str | None = None,
    full_refresh: bool = False,
) -> DbtOutcome:
    """``dbt build`` with ``profiles/`` in this process.

    With the ``local`` target dbt's ``session`` method picks up the
    SparkSession this process already runs, so ingestion, dbt and the ML
    steps share one Spark driver and one metastore. The models are
    incremental: they take in only what ingestion added since their last
    build, unless ``full_refresh`` rebuilds them from the raw tables.
    """
    # Unit tests check the models' logic on fixed rows, not the data: they
    # run in the test suite and in a hand-run `dbt build`, not every run.
    args = ["build", "--exclude-resource-type", "unit_test"]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    return dbt_invoke(workdir, args, target=target, variables=variables)


def dbt_invoke(
    workdir: Workdir,
    args: Sequence[str],
    *,
    target: str | None = None,
    variables: Mapping[str, object] | None = None,
) -> DbtOutcome:
    """Any dbt command in this process, with the settings ``dbt_build`` uses.

    ``args`` start with the command, e.g. ``["docs", "generate"]`` or
    ``["test", "--select", "test_type:unit"]``; the project, profiles,
    target and log paths are added. Raises ``TransformError`` when dbt fails
    or any model or test does.
    """
    from dbt.cli.main import dbtRunner

    if not args or str(args[0]).startswith("-"):
        raise ValueError(
            f"args should start with a dbt command such as 'build', got {args!r}"
        )
    if not (PROJECT_DIR / "dbt_project.yml").exists():
        raise TransformError(
            f"no dbt_project.yml in {PROJECT_DIR}; run sparkify from a clone "
            "of the project (pip install -e .)"
        )
    command = " ".join(arg for arg in args[:2] if not arg.startswith("-"))
    started = time.monotonic()
    os.environ[WORKDIR_ENV] = str(workdir.root)
    args = [
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROFILES_DIR),
        "--target-path", str(workdir.dbt_target),
        "--log-path", str(workdir.root / "logs"),
        # Nothing on the terminal, errors included: the raised TransformError
        # names each failure, and logs/dbt.log has dbt's whole story (a
        # failed query's Java stack trace would otherwise fill the screen).
        "--log-level", "none",
        "--log-level-file", "debug",
        "--no-use-colors",
    ]  # fmt: skip
    target = target or os.environ.get(TARGET_ENV)
    if target:
        args += ["--target", target]
    if variables:
        args += ["--vars", json.dumps(dict(variables))]
    log.info("dbt %s", " ".join(args))

    result = dbtRunner().invoke(args)
    outcome = DbtOutcome(seconds=time.monotonic() - started)
    failures: list[str] = []
    for node in getattr(result.result, "results", None) or []:
        status = str(node.status).lower()
        name = node.node.name
        resource = node.node.resource_type
        if status in ("error", "fail", "runtime error"):
            message = (node.message or "").strip().splitlines()
            failures.append(f"{resource} {name}: {message[0] if message else status}")
        elif status == "warn":
            outcome.warnings.append(f"{resource} {name}: {node.message}")
        elif resource == "model":
            outcome.models += 1
        elif resource in ("test", "unit_test"):
            outcome.tests_passed += 1
    if failures or not result.success:
        detail = "\n  ".join(failures) or str(result.exception)
        if "on_schema_change" in detail or "schema change" in detail.lower():
            detail += (
                "\n  The model's columns changed since its tables were built; "
                "rebuild them with `sparkify run --full-refresh`."
            )
        raise TransformError(
            f"dbt {command} failed (log: {workdir.root / 'logs' / 'dbt.log'}):"
            f"\n  {detail}"
        )
    log.info(
        "dbt %s: %d models, %d tests passed, %d warnings in %.1fs",
        command,
        outcome.models,
        outcome.tests_passed,
        len(outcome.warnings),
        outcome.seconds,
    )
    return outcome
