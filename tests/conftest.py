"""Fixtures shared by the test suite: one SparkSession for the whole run.

The embedded Derby metastore belongs to one SparkSession per process, so
every in-process Spark test shares this session and its workdir and keeps to
its own databases. Whole-pipeline tests run the ``sparkify`` command in a
subprocess with a workdir of their own instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkify.config import Workdir

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EVENTSIM_SMALL = SHARED_DATA / "eventsim_small.jsonl.gz"
UDACITY = SHARED_DATA / "udacity_log_data_2018-11.jsonl.gz"

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


def shared_data(path: Path) -> Path:
    """A file of ../shared/data, or a skip where this checkout lacks it."""
    if not path.exists():
        pytest.skip(f"{path} is not here (it ships beside the repo, not in it)")
    return path


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    return Workdir.at(tmp_path_factory.mktemp("workdir")).create()


@pytest.fixture(scope="session")
def spark(workdir: Workdir) -> Iterator[object]:
    from sparkify.spark import spark_session

    os.environ["SPARKIFY_WORKDIR"] = str(workdir.root)
    session = spark_session(workdir, "local[2]")
    yield session
    session.stop()
