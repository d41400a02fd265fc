"""The dbt models and singular tests pass sqlfluff with the project's .sqlfluff.

sqlfluff's dbt templater compiles every file through dbt, which starts a
local Spark on a Derby metastore that admits one process: the lint runs in a
subprocess with a throwaway workdir of its own, never the test session's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
LINTED_DIRS = ("models", "tests/dbt")


@dataclass
class Lint:
    """One ``sqlfluff lint`` run: its per-file results and what it printed."""

    results: list[dict]
    log: str


@pytest.fixture(scope="module")
def lint(tmp_path_factory: pytest.TempPathFactory) -> Lint:
    scratch = tmp_path_factory.mktemp("sqlfluff")
    report = scratch / "lint.json"
    env = {
        **os.environ,
        "SPARKIFY_WORKDIR": str(scratch / "workdir"),
        "SPARKIFY_DBT_SCHEMA": "sqlfluff",
        # dbt's own files and Derby's log go to the scratch space, not the
        # project root.
        "DBT_TARGET_PATH": str(scratch / "dbt_target"),
        "DBT_LOG_PATH": str(scratch / "dbt_logs"),
        "PYSPARK_SUBMIT_ARGS": (
            f"--driver-java-options -Dderby.system.home={scratch} pyspark-shell"
        ),
    }
    result = subprocess.run(
        [
            sys.executable, "-m", "sqlfluff", "lint", *LINTED_DIRS,
            "--format", "json", "--write-output", str(report),
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    log = result.stdout + result.stderr
    # 0: clean, 1: violations; anything else means sqlfluff could not lint.
    assert result.returncode in (0, 1), log
    return Lint(results=json.loads(report.read_text()), log=log)


def test_sqlfluff_lints_every_model_and_dbt_test(lint):
    expected = {
        str(path.relative_to(PROJECT_DIR))
        for folder in LINTED_DIRS
        for path in (PROJECT_DIR / folder).rglob("*.sql")
    }

    # sqlfluff skips, with a mere warning, a file dbt cannot place or
    # compile: such a file is missing from the results or has nothing parsed.
    linted = {
        str(Path(result["filepath"]))
        for result in lint.results
        if result.get("statistics", {}).get("segments")
    }

    assert not expected - linted, (
        f"sqlfluff did not lint {sorted(expected - linted)}:\n{lint.log}"
    )


def test_models_and_dbt_tests_follow_the_sql_style(lint):
    violations = [
        f"{result['filepath']}:{violation['start_line_no']}:"
        f"{violation['start_line_pos']}: {violation['code']} "
        f"{violation['description']}"
        for result in lint.results
        for violation in result["violations"]
    ]

    assert not violations, (
        "sqlfluff found style violations (fix them by hand, or run the "
        "README's `sqlfluff fix` and review the diff):\n" + "\n".join(violations)
    )
