"""Running the ``sparkify`` command as a user does, and reading what it served."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from sparkify.engine import CLUSTER_SETTINGS

__all__ = ["CLUSTER_SETTINGS", "serving_tables", "sparkify", "succeeded"]


def sparkify(
    *args: str, timeout: int = 1200, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``sparkify ARGS`` in a subprocess; ``env`` is added to a local environment."""
    environment = {k: v for k, v in os.environ.items() if k not in CLUSTER_SETTINGS}
    return subprocess.run(
        [sys.executable, "-m", "sparkify", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**environment, **(env or {})},
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def serving_tables(workdir: Path) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(f"sqlite:///{workdir / 'serving.db'}")
    with engine.connect() as connection:
        return {
            name: pd.read_sql_table(name, connection)
            for name in ("customers", "churn_scores", "metadata", "daily_activity")
        }
