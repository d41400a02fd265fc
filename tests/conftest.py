"""Fixtures shared by the test suite: one SparkSession for the whole run.

The embedded Derby metastore belongs to one SparkSession per process, so
every in-process Spark test shares this session and its workdir and keeps to
its own databases. Whole-pipeline tests run the ``sparkify`` command in a
subprocess with a workdir of their own instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

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
