"""Fixtures shared by the test suite: one SparkSession for the whole run.

The embedded Derby metastore belongs to one SparkSession per process, so
every in-process Spark test shares this session and its workdir and keeps to
its own databases. Whole-pipeline tests run the ``sparkify`` command in a
subprocess with a workdir of their own instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparkify.config import Workdir

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


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


@dataclass(frozen=True)
class PipelineRun:
    """A finished ``sparkify run``: its workdir, what it printed, how long it took."""

    workdir: Path
    stdout: str
    seconds: float


@pytest.fixture(scope="session")
def eventsim_local_run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    """``sparkify run`` on eventsim_small with the local target, made once.

    The whole-pipeline tests check it, and the cluster tests compare their
    serving databases with it.
    """
    from tests.runs import sparkify, succeeded
    from tests.shared_data import EVENTSIM_SMALL, shared_data

    logs = shared_data(EVENTSIM_SMALL)
    workdir = tmp_path_factory.mktemp("eventsim-local")
    started = time.monotonic()
    stdout = succeeded(sparkify("run", "--input", str(logs), "--workdir", str(workdir)))
    return PipelineRun(workdir, stdout, time.monotonic() - started)
