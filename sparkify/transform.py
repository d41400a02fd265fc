"""Run the project's dbt models and tests in this process, on its SparkSession."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sparkify.config import WORKDIR_ENV, Workdir

__all__ = ["PROJECT_DIR", "DbtOutcome", "TransformError", "dbt_build"]

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[1]
PROFILES_DIR = PROJECT_DIR / "profiles"
TARGET_ENV = "SPARKIFY_DBT_TARGET"


class TransformError(RuntimeError):
    """dbt could not build the models, or one of its tests failed."""


@dataclass
class DbtOutcome:
    """What one ``dbt build`` did."""

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
) -> DbtOutcome:
    """``dbt build`` with ``profiles/`` in this process.

    With the ``local`` target dbt's ``session`` method picks up the
    SparkSession this process already runs, so ingestion, dbt and the ML
    steps share one Spark driver and one metastore.
    """
    from dbt.cli.main import dbtRunner

    if not (PROJECT_DIR / "dbt_project.yml").exists():
        raise TransformError(
            f"no dbt_project.yml in {PROJECT_DIR}; run sparkify from a clone "
            "of the project (pip install -e .)"
        )
    started = time.monotonic()
    os.environ[WORKDIR_ENV] = str(workdir.root)
    args = [
        "build",
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROFILES_DIR),
        "--target-path", str(workdir.dbt_target),
        "--log-path", str(workdir.root / "logs"),
        "--quiet",
        "--no-use-colors",
    ]  # fmt: skip
    target = target or os.environ.get(TARGET_ENV)
    if target:
        args += ["--target", target]
    if variables:
        args += ["--vars", json.dumps(dict(variables))]
    if select:
        args += ["--select", select]
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
        raise TransformError(
            f"dbt build failed (log: {workdir.root / 'logs' / 'dbt.log'}):\n  {detail}"
        )
    log.info(
        "dbt build: %d models, %d tests passed, %d warnings in %.1fs",
        outcome.models,
        outcome.tests_passed,
        len(outcome.warnings),
        outcome.seconds,
    )
    return outcome
