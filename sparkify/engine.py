"""Which Spark a run uses (this machine, a cluster, a Thrift Server); checks on it."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sparkify.config import Workdir

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "CLUSTER_SETTINGS",
    "CLUSTER_TIMEOUT_ENV",
    "MASTER_ENV",
    "METASTORE_ENV",
    "TARGETS",
    "TARGET_ENV",
    "THRIFT_HOST_ENV",
    "THRIFT_PORT_ENV",
    "ClusterError",
    "ClusterWatch",
    "Engine",
    "copy_from_local",
    "copy_to_local",
    "delete_path",
    "watched",
]

log = logging.getLogger(__name__)

TARGETS = ("local", "cluster", "thrift")
TARGET_ENV = "SPARKIFY_DBT_TARGET"
MASTER_ENV = "SPARKIFY_SPARK_MASTER"
METASTORE_ENV = "SPARKIFY_METASTORE_URIS"
THRIFT_HOST_ENV = "SPARKIFY_THRIFT_HOST"
THRIFT_PORT_ENV = "SPARKIFY_THRIFT_PORT"
CLUSTER_TIMEOUT_ENV = "SPARKIFY_CLUSTER_TIMEOUT"
# Every setting that sends a run to a cluster; a local run goes without them.
CLUSTER_SETTINGS = (
    MASTER_ENV,
    TARGET_ENV,
    "SPARKIFY_WAREHOUSE",
    METASTORE_ENV,
    THRIFT_HOST_ENV,
    THRIFT_PORT_ENV,
    "SPARK_CONF_DIR",
)
_LOCAL_MASTER = re.compile(r"^local(\[[0-9*]+(,\s*[0-9]+)?\])?$")
_RERUN = (
    "Start it again and rerun the same command: files already ingested are "
    "not read again and a batch cut off half-way is removed first, so nothing "
    "is taken in twice."
)


class ClusterError(RuntimeError):
    """The Spark master, Thrift Server or metastore a run needs does not answer."""


@dataclass(frozen=True)
class Engine:
    """The resolved engine settings of one run.

    ``target`` is the dbt target in ``profiles/profiles.yml``; the Python
    steps (ingestion, quality gates, training, scoring) use ``master`` and
    the same warehouse and metastore as dbt.
    """

    target: str
    master: str
    warehouse: str
    metastore_uris: str | None
    thrift_host: str
    thrift_port: int
    timeout_seconds: float

    @classmethod
    def from_settings(
        cls,
        workdir: Workdir,
        *,
        target: str | None = None,
        master: str | None = None,
    ) -> Engine:
        """Settings from the arguments, else the environment; checked, not probed.

        The target defaults to ``cluster`` when the master is not a
        ``local`` one, else ``local``.
        """
        master = (master or os.environ.get(MASTER_ENV) or "local[*]").strip()
        _check_master(master)
        is_local = bool(_LOCAL_MASTER.match(master))
        target = (target or os.environ.get(TARGET_ENV) or "").strip() or (
            "local" if is_local else "cluster"
        )
        if target not in TARGETS:
            raise ValueError(
                f"--target (or {TARGET_ENV}) must be one of {', '.join(TARGETS)}, "
                f"got {target!r}"
            )
        if target == "local" and not is_local:
            raise ValueError(
                f"--target local runs Spark on this machine, but the master is "
                f"{master!r}: pick --target cluster (or thrift) for a cluster, or "
                f"leave --master and {MASTER_ENV} unset"
            )
        if target == "cluster" and is_local:
            raise ValueError(
                f"--target cluster needs the cluster's master URL in --master or "
                f"{MASTER_ENV} (spark://HOST:7077 or yarn), got {master!r}"
            )
        metastore = os.environ.get(METASTORE_ENV, "").strip() or None
        if target == "thrift" and metastore is None:
            raise ValueError(
                f"--target thrift needs {METASTORE_ENV}: the Hive metastore the "
                "Thrift Server uses (e.g. thrift://HOST:9083), so that ingestion "
                "and the model see the tables dbt builds there"
            )
        for uri in (metastore or "").split(","):
            if uri.strip() and not uri.strip().startswith("thrift://"):
                raise ValueError(
                    f"{METASTORE_ENV} should hold thrift://HOST:PORT URIs, "
                    f"comma-separated, got {metastore!r}"
                )
        port_text = os.environ.get(THRIFT_PORT_ENV, "10000")
        timeout_text = os.environ.get(CLUSTER_TIMEOUT_ENV, "60")
        try:
            port, timeout = int(port_text), float(timeout_text)
        except ValueError:
            raise ValueError(
                f"{THRIFT_PORT_ENV} should be a port number and "
                f"{CLUSTER_TIMEOUT_ENV} a number of seconds, got {port_text!r} "
                f"and {timeout_text!r}"
            ) from None
        return cls(
            target=target,
            master=master,
            warehouse=workdir.warehouse_uri,
            metastore_uris=metastore,
            thrift_host=os.environ.get(THRIFT_HOST_ENV, "127.0.0.1"),
            thrift_port=port,
            timeout_seconds=timeout,
        )

    @property
    def is_local(self) -> bool:
        return bool(_LOCAL_MASTER.match(self.master))

    @property
    def thrift_address(self) -> str:
        return f"{self.thrift_host}:{self.thrift_port}"

    def master_addresses(self) -> list[tuple[str, int]]:
        """Host and port of each master of a ``spark://`` URL (several with HA)."""
        if not self.master.startswith("spark://"):
            return []
        addresses = []
        for part in self.master.removeprefix("spark://").split(","):
            host, _, port = part.strip().rpartition(":")
            addresses.append((host or part, int(port) if port.isdigit() else 7077))
        return addresses

    def check(self) -> None:
        """Raise ``ClusterError`` naming whatever this run needs that does not answer.

        Called before Spark starts, so a wrong URL costs a second, not the
        minute Spark spends retrying a master.
        """
        missing = self._unreachable()
        if missing is None:
            return
        what, advice = missing
        raise ClusterError(
            f"cannot reach {what}. {advice} Nothing was read or written."
        )

    def lost(self, step: str, exc: BaseException) -> ClusterError | None:
        """A ``ClusterError`` if ``exc`` in ``step`` came from a part now gone."""
        missing = self._unreachable()
        if missing is None:
            return None
        return ClusterError(
            f"lost {missing[0]} during step {step!r}, so the run stopped there "
            f"({type(exc).__name__}). {_RERUN}"
        )

    def _unreachable(self) -> tuple[str, str] | None:
        """What does not answer, and what to do about it; ``None`` if all do."""
        masters = self.master_addresses()
        if masters and not any(_answers(host, port) for host, port in masters):
            unknown = [host for host, _ in masters if not _resolves(host)]
            why = (
                f"no such host: {', '.join(unknown)}"
                if len(unknown) == len(masters)
                else f"nothing answers on {', '.join(f'{h}:{p}' for h, p in masters)}"
            )
            return (
                f"the Spark master {self.master} ({why})",
                "Start the cluster (on this machine: scripts/cluster.sh start), "
                f"or give its URL with --master or {MASTER_ENV}, or leave both "
                "unset to run on this machine.",
            )
        for uri in self.metastore_uris_list():
            parts = urlsplit(uri)
            if not _answers(parts.hostname or "", parts.port or 9083):
                return (
                    f"the Hive metastore {uri} ({METASTORE_ENV})",
                    f"Start it, or set {METASTORE_ENV} to where it listens.",
                )
        if self.target == "thrift" and not _answers(self.thrift_host, self.thrift_port):
            return (
                f"the Spark Thrift Server at {self.thrift_address} that "
                "--target thrift uses",
                "Start it (on this machine: scripts/cluster.sh start --thrift), "
                f"or set {THRIFT_HOST_ENV} and {THRIFT_PORT_ENV} to where it "
                "listens.",
            )
        return None

    def metastore_uris_list(self) -> list[str]:
        """The metastore URIs, one per item (Hive takes several for failover)."""
        return [u.strip() for u in (self.metastore_uris or "").split(",") if u.strip()]


_MASTER = re.compile(r"^(spark://[^/\s]+|yarn)$")
_YARN_CONFIG = ("HADOOP_CONF_DIR", "YARN_CONF_DIR")


def _check_master(master: str) -> None:
    """Refuse a master URL Spark would refuse with a Java stack trace."""
    if not (_LOCAL_MASTER.match(master) or _MASTER.match(master)):
        raise ValueError(
            f"--master (or {MASTER_ENV}) should be spark://HOST:PORT, yarn "
            f"or local[*], got {master!r}"
        )
    if master == "yarn" and not any(os.environ.get(n) for n in _YARN_CONFIG):
        conf_dir = os.environ.get("SPARK_CONF_DIR", "")
        spark_env = os.path.join(conf_dir, "spark-env.sh") if conf_dir else ""
        if not (spark_env and _mentions(spark_env, _YARN_CONFIG)):
            raise ValueError(
                "--master yarn needs the cluster's Hadoop configuration: set "
                "HADOOP_CONF_DIR (or YARN_CONF_DIR) to the folder holding "
                "yarn-site.xml, e.g. /etc/hadoop/conf, or SPARK_CONF_DIR to a "
                "folder whose spark-env.sh sets it (on EMR: /etc/spark/conf)"
            )


def _mentions(path: str, names: tuple[str, ...]) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return False
    return any(name in text for name in names)


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def _answers(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ClusterWatch:
    """Stops a run's Spark jobs when its cluster goes away, instead of hanging.

    A Spark job whose executors died waits for new ones forever. While a step
    runs, a thread checks every couple of seconds that the master answers and
    that executors remain; after ``timeout_seconds`` without either it
    cancels every job, so the step fails and ``message`` says why.
    """

    def __init__(self, engine: Engine, spark: SparkSession) -> None:
        self.engine = engine
        self.spark = spark
        self.step = ""
        self.message: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ClusterWatch:
        if not self.engine.is_local:
            self._thread = threading.Thread(
                target=self._watch, name="sparkify-cluster-watch", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def error(self, exc: BaseException) -> ClusterError | None:
        """The ``ClusterError`` to raise for ``exc``, when the cluster caused it."""
        if self.message:
            return ClusterError(self.message)
        return self.engine.lost(self.step, exc)

    def _watch(self) -> None:
        masters = self.engine.master_addresses()
        had_executors = False
        trouble_since: float | None = None
        while not self._stop.wait(2.0):
            master_ok = not masters or any(_answers(h, p, 1.0) for h, p in masters)
            executors = self._executors()
            had_executors = had_executors or executors > 0
            if master_ok and (executors > 0 or not had_executors):
                trouble_since = None
                continue
            trouble_since = trouble_since or time.monotonic()
            waited = time.monotonic() - trouble_since
            if waited < self.engine.timeout_seconds:
                continue
            if self.message is None:
                what = (
                    "the Spark master does not answer"
                    if not master_ok
                    else "every executor is gone"
                )
                self.message = (
                    f"lost the Spark cluster {self.engine.master} during step "
                    f"{self.step!r} ({what} for {waited:.0f} s), so the run "
                    f"stopped there. {_RERUN}"
                )
                # INFO: the run's error says it on the terminal.
                log.info("%s; cancelling its Spark jobs", self.message)
            self._cancel()

    def _executors(self) -> int:
        try:
            # The driver counts itself among the block managers.
            status = self.spark.sparkContext._jsc.sc().getExecutorMemoryStatus()
            return max(int(status.size()) - 1, 0)
        except Exception:  # noqa: BLE001 - a stopping context has no answer
            return 0

    def _cancel(self) -> None:
        try:
            self.spark.sparkContext.cancelAllJobs()
        except Exception:  # noqa: BLE001 - nothing left to cancel
            log.info("could not cancel the Spark jobs", exc_info=True)


@contextmanager
def watched(engine: Engine, spark: SparkSession) -> Iterator[ClusterWatch]:
    """``ClusterWatch`` as a context, turning a cluster's failure into its error."""
    with ClusterWatch(engine, spark) as watch:
        try:
            yield watch
        except ClusterError:
            raise
        except Exception as exc:
            lost = watch.error(exc)
            if lost is not None:
                raise lost from exc
            raise


def _file_system(spark: SparkSession, location: str) -> tuple[object, object]:
    path = spark._jvm.org.apache.hadoop.fs.Path(location)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def delete_path(spark: SparkSession, location: str) -> None:
    """Delete a file or folder (recursively) on any file system Hadoop knows."""
    fs, path = _file_system(spark, location)
    fs.delete(path, True)


def copy_to_local(spark: SparkSession, location: str, local: str) -> None:
    """Copy a file or folder from ``location`` (``s3a://``, ``hdfs://``...) here."""
    fs, path = _file_system(spark, location)
    fs.copyToLocalFile(False, path, spark._jvm.org.apache.hadoop.fs.Path(local), True)


def copy_from_local(spark: SparkSession, local: str, location: str) -> None:
    """Copy a local file or folder to ``location`` on a cluster's file system."""
    fs, path = _file_system(spark, location)
    fs.copyFromLocalFile(False, True, spark._jvm.org.apache.hadoop.fs.Path(local), path)
