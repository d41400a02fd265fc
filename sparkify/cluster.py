"""Start and stop a real Spark standalone cluster on this machine, bound to 127.0.0.1.

A master and workers from the Spark distribution inside the PySpark wheel
(``bin/spark-class``), and for dbt's ``thrift`` target a Hive metastore
service (Hive's own ``HiveMetaStore``, from the same jars, on embedded Derby)
and a Spark Thrift Server (``HiveThriftServer2``) that runs on the cluster.
The processes outlive the command that starts them; their ids, logs and
files stay in the state folder, and ``stop`` ends exactly those processes.

Run it as ``scripts/cluster.sh start [--thrift]``, ``env``, ``status`` and
``stop``; ``eval "$(scripts/cluster.sh env)"`` points ``sparkify run`` at it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sparkify.config import WAREHOUSE_ENV
from sparkify.engine import (
    MASTER_ENV,
    METASTORE_ENV,
    TARGET_ENV,
    THRIFT_HOST_ENV,
    THRIFT_PORT_ENV,
    ClusterError,
)

__all__ = ["HOST", "LocalCluster", "main", "spark_home"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_STATE_FILE = "cluster.json"
# Each application (a `sparkify run`, the Thrift Server) takes one core on
# each worker, so a run and the Thrift Server fit on the cluster at once.
_APP_CONF = {
    "spark.driver.host": HOST,
    "spark.driver.bindAddress": HOST,
    "spark.executor.cores": "1",
    "spark.cores.max": "2",
    "spark.executor.memory": "2g",
}


def spark_home() -> Path:
    """The Spark distribution that the installed PySpark wheel carries."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass
class LocalCluster:
    """A standalone cluster's layout and ports; ``start`` and ``stop`` run it.

    ``state_dir`` holds ``cluster.json`` (what runs, with process ids), the
    daemons' logs, the workers' folders, ``conf/spark-defaults.conf`` for
    the applications and, with ``thrift``, the metastore's Derby database
    and the shared warehouse.
    """

    state_dir: Path
    master_port: int = 7077
    master_ui_port: int = 8080
    workers: int = 2
    worker_cores: int = 2
    worker_memory: str = "4g"
    thrift: bool = False
    thrift_port: int = 10000
    metastore_port: int = 9083
    warehouse: str = ""
    pids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        if self.workers < 1 or self.worker_cores < 1:
            raise ValueError(
                f"workers and worker_cores must be at least 1, got "
                f"{self.workers} and {self.worker_cores}"
            )
        self.warehouse = self.warehouse or str(self.state_dir / "warehouse")
        # The processes this object started, so stopping them also reaps them.
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def metastore_uri(self) -> str:
        return f"thrift://{HOST}:{self.metastore_port}"

    @property
    def conf_dir(self) -> Path:
        return self.state_dir / "conf"

    def environment(self, target: str | None = None) -> dict[str, str]:
        """The settings that point ``sparkify run`` at this cluster.

        ``target`` defaults to ``thrift`` on a cluster started with the Thrift
        Server, else ``cluster``; the ``cluster`` target keeps the workdir's
        own warehouse and metastore (every process here sees the same disk).
        """
        target = target or ("thrift" if self.thrift else "cluster")
        if target == "thrift" and not self.thrift:
            raise ValueError(
                "target 'thrift' needs a cluster started with the Thrift Server "
                "(scripts/cluster.sh start --thrift)"
            )
        settings = {
            MASTER_ENV: self.master_url,
            TARGET_ENV: target,
            "SPARK_CONF_DIR": str(self.conf_dir),
        }
        if target == "thrift":
            settings |= {
                METASTORE_ENV: self.metastore_uri,
                WAREHOUSE_ENV: self.warehouse,
                THRIFT_HOST_ENV: HOST,
                THRIFT_PORT_ENV: str(self.thrift_port),
            }
        return settings

    # -- running ---------------------------------------------------------

    def start(self, timeout: float = 180.0) -> LocalCluster:
        """Start whatever of the cluster is not running, and wait until it is up.

        After a crash this brings back just the missing processes. Raises
        ``ClusterError`` (after ending the processes this call started) when
        a port is taken or a process does not come up within ``timeout``
        seconds.
        """
        running = {name for name, alive in self.running().items() if alive}
        workers = [f"worker-{index + 1}" for index in range(self.workers)]
        plan: list[tuple[str, list[int]]] = [
            ("master", [self.master_port, self.master_ui_port]),
            *[(name, []) for name in workers],
        ]
        if self.thrift:
            plan += [
                ("metastore", [self.metastore_port]),
                ("thrift-server", [self.thrift_port]),
            ]
        plan = [(name, ports) for name, ports in plan if name not in running]
        taken = [port for _, ports in plan for port in ports if _answers(port)]
        if taken:
            raise ClusterError(
                f"port(s) {', '.join(map(str, taken))} on {HOST} are in use; "
                "stop what listens there or pick other ports (see --help)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_app_conf()
        started = time.monotonic()
        log.info(
            "starting %s of a Spark cluster (%s, %d workers of %d cores) in %s",
            ", ".join(name for name, _ in plan) or "nothing",
            self.master_url,
            self.workers,
            self.worker_cores,
            self.state_dir,
        )
        commands = {
            "master": self._master_command,
            "metastore": self._metastore_command,
            "thrift-server": self._thrift_command,
        }
        ready = {
            "master": lambda: _answers(self.master_port),
            "metastore": lambda: _answers(self.metastore_port),
            "thrift-server": lambda: _answers(self.thrift_port),
        }
        spawned: list[str] = []
        try:
            for name, _ in plan:
                spawned.append(name)
                if name.startswith("worker"):
                    self._spawn(name, self._worker_command(workers.index(name)))
                    continue
                self._spawn(name, commands[name]())
                self._wait(ready[name], name, timeout)
            self._wait(
                lambda: self._alive_workers() >= self.workers,
                "workers",
                timeout,
                *workers,
            )
        except BaseException:
            if running:  # what ran before this call keeps running, recorded
                self.kill(*spawned)
            else:
                self.stop()
            raise
        log.debug("Spark cluster up in %.1fs", time.monotonic() - started)
        return self

    def stop(self, grace: float = 15.0) -> list[str]:
        """End the processes this cluster started, Thrift Server first.

        Each was started in a session of its own, so its process group holds
        it and what it launched (a worker's executors); only groups whose
        leader is still the recorded process are signalled.
        """
        self._load_pids()
        stopped = []
        for name in sorted(self.pids, key=_stop_order):
            if self._alive(name):
                _signal_group(self.pids[name], signal.SIGTERM)
                stopped.append(name)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(self.running().values()):
            time.sleep(0.5)
        for name, pid in self.pids.items():
            if self._alive(name):
                _signal_group(pid, signal.SIGKILL)
        for process in self._processes.values():
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log.warning("process %d did not end after SIGKILL", process.pid)
        self._processes = {}
        self.pids = {}
        self._state_path.unlink(missing_ok=True)
        log.info("stopped %s", ", ".join(stopped) or "nothing (none was running)")
        return stopped

    def kill(self, *names: str) -> None:
        """Kill the named processes at once (SIGKILL), as a machine failure would."""
        self._load_pids()
        for name in names:
            if self._alive(name):
                _signal_group(self.pids[name], signal.SIGKILL)
            if name in self._processes:
                self._processes.pop(name).wait(timeout=30)

    def running(self) -> dict[str, bool]:
        """Each recorded process and whether it still runs."""
        self._load_pids()
        return {name: self._alive(name) for name in self.pids}

    # -- commands --------------------------------------------------------

    def _master_command(self) -> list[str]:
        return [
            str(spark_home() / "bin" / "spark-class"),
            "org.apache.spark.deploy.master.Master",
            "--host", HOST,
            "--port", str(self.master_port),
            "--webui-port", str(self.master_ui_port),
        ]  # fmt: skip

    def _worker_command(self, index: int) -> list[str]:
        work = self.state_dir / f"worker-{index + 1}"
        work.mkdir(parents=True, exist_ok=True)
        return [
            str(spark_home() / "bin" / "spark-class"),
            "org.apache.spark.deploy.worker.Worker",
            "--host", HOST,
            "--webui-port", str(_free_port()),
            "--cores", str(self.worker_cores),
            "--memory", self.worker_memory,
            "--work-dir", str(work),
            self.master_url,
        ]  # fmt: skip

    def _metastore_command(self) -> list[str]:
        home = self.state_dir / "metastore"
        home.mkdir(parents=True, exist_ok=True)
        hive = {
            "javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
            ),
            "hive.metastore.schema.verification": "false",
            "datanucleus.schema.autoCreateAll": "true",
            "hive.metastore.warehouse.dir": self.warehouse,
            # Hive's asynchronous logging wants a jar Spark does not ship.
            "hive.async.log.enabled": "false",
        }
        java = shutil.which("java", path=_java_path()) or "java"
        command = [
            java,
            "-Xmx512m",
            f"-Dderby.system.home={home}",
            "-cp", f"{spark_home() / 'jars'}/*",
            "org.apache.hadoop.hive.metastore.HiveMetaStore",
            "-p", str(self.metastore_port),
        ]  # fmt: skip
        for key, value in hive.items():
            command += ["--hiveconf", f"{key}={value}"]
        return command

    def _thrift_command(self) -> list[str]:
        from sparkify.spark import engine_conf

        conf = {
            **engine_conf(),
            **_APP_CONF,
            "spark.sql.warehouse.dir": self.warehouse,
            "spark.hadoop.hive.metastore.uris": self.metastore_uri,
            "spark.local.dir": str(self.state_dir / "thrift-tmp"),
        }
        command = [
            str(spark_home() / "bin" / "spark-submit"),
            "--master", self.master_url,
            "--name", "sparkify-thrift-server",
            "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
            "--driver-java-options", "-Duser.timezone=UTC",
        ]  # fmt: skip
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        return [
            *command,
            "spark-internal",
            "--hiveconf", f"hive.server2.thrift.bind.host={HOST}",
            "--hiveconf", f"hive.server2.thrift.port={self.thrift_port}",
        ]  # fmt: skip

    # -- plumbing --------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.state_dir / _STATE_FILE

    def _write_app_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"{key} {value}" for key, value in _APP_CONF.items()]
        (self.conf_dir / "spark-defaults.conf").write_text(
            "# Written by sparkify.cluster for applications on its cluster.\n"
            + "\n".join(lines)
            + "\n",
            encoding="utf-8",
        )

    def _spawn(self, name: str, command: list[str]) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_CONF_DIR": str(self.conf_dir),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_LOG_DIR": str(logs),
            "SPARK_DAEMON_MEMORY": "512m",
            # The master's REST submission port (6066) would clash between
            # two clusters on one machine; nothing here submits through it.
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
            "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        }
        with (logs / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self.pids[name] = process.pid
        self._processes[name] = process
        self._state_path.write_text(
            json.dumps({**asdict(self), "state_dir": str(self.state_dir)}, indent=2),
            encoding="utf-8",
        )
        log.info("started %s (pid %d): %s", name, process.pid, " ".join(command))

    def _wait(
        self, ready: Callable[[], bool], name: str, timeout: float, *watch: str
    ) -> None:
        """Until ``ready()``; fails early when every process in ``watch`` died."""
        watch = watch or (name,)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if not any(self._alive(name) for name in watch):
                raise ClusterError(
                    f"the cluster's {name} stopped while starting; see its log in "
                    f"{self.state_dir / 'logs'}"
                )
            time.sleep(1.0)
        raise ClusterError(
            f"the cluster's {name} did not come up within {timeout:.0f} s; see "
            f"its log in {self.state_dir / 'logs'}"
        )

    def _alive(self, name: str) -> bool:
        # A process this object started is asked directly: until it has
        # exec'd, its command line is still this Python's.
        if name in self._processes:
            return self._processes[name].poll() is None
        return _is_ours(self.pids.get(name, 0), name)

    def _alive_workers(self) -> int:
        url = f"http://{HOST}:{self.master_ui_port}/json/"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(json.load(response).get("aliveworkers", 0))
        except (OSError, ValueError):
            return 0

    def _load_pids(self) -> None:
        if not self.pids and self._state_path.exists():
            recorded = json.loads(self._state_path.read_text(encoding="utf-8"))
            self.pids = {name: int(pid) for name, pid in recorded["pids"].items()}


def _stop_order(name: str) -> int:
    order = ("thrift-server", "metastore", "worker", "master")
    return next(i for i, prefix in enumerate(order) if name.startswith(prefix))


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _java_path() -> str:
    java_home = os.environ.get("JAVA_HOME")
    path = os.environ.get("PATH", "")
    return f"{java_home}/bin:{path}" if java_home else path


_MARKERS = {
    "master": b"org.apache.spark.deploy.master.Master",
    "worker": b"org.apache.spark.deploy.worker.Worker",
    "metastore": b"org.apache.hadoop.hive.metastore.HiveMetaStore",
    "thrift-server": b"org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
}


def _is_ours(pid: int, name: str) -> bool:
    """True while ``pid`` runs as the ``name`` process started here.

    It leads its own process group and its command line names the class it
    runs, so an id the system has since given to another process is not it.
    """
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
        leader = os.getpgid(pid) == pid
    except OSError:
        return False
    zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
    marker = _MARKERS["worker" if name.startswith("worker") else name]
    return leader and not zombie and marker in cmdline


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    """``scripts/cluster.sh``: start, stop, status or env of the local cluster."""
    parser = argparse.ArgumentParser(
        prog="scripts/cluster.sh",
        description="A Spark standalone cluster on 127.0.0.1 for sparkify's "
        "cluster and thrift targets. The layout options (workers, ports) apply "
        "when start records a new cluster; one recorded in --state keeps its own.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "env"])
    parser.add_argument(
        "--target",
        choices=["cluster", "thrift"],
        help="for env: the dbt target [default: thrift with --thrift, else cluster]",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(os.environ.get("SPARKIFY_CLUSTER_STATE", "work/cluster")),
        help="folder for the cluster's ids, logs and files [default: work/cluster]",
    )
    parser.add_argument(
        "--thrift",
        action="store_true",
        help="also a Hive metastore and a Spark Thrift Server (for --target thrift)",
    )
    for flag, default, what in (
        ("--workers", 2, "worker processes"),
        ("--worker-cores", 2, "cores each worker offers"),
        ("--worker-memory", "4g", "memory each worker offers"),
        ("--master-port", 7077, "the master's port"),
        ("--master-ui-port", 8080, "the master's web UI port"),
        ("--thrift-port", 10000, "the Thrift Server's port (with --thrift)"),
        ("--metastore-port", 9083, "the Hive metastore's port (with --thrift)"),
    ):
        parser.add_argument(
            flag,
            type=type(default),
            default=default,
            help=f"{what} [default: {default}]",
        )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    recorded = args.state / _STATE_FILE
    # A cluster that ran here (and crashed, for `start`) keeps its layout.
    if recorded.exists():
        saved = json.loads(recorded.read_text(encoding="utf-8"))
        cluster = LocalCluster(**saved)
    else:
        cluster = LocalCluster(
            state_dir=args.state,
            master_port=args.master_port,
            master_ui_port=args.master_ui_port,
            workers=args.workers,
            worker_cores=args.worker_cores,
            worker_memory=args.worker_memory,
            thrift=args.thrift,
            thrift_port=args.thrift_port,
            metastore_port=args.metastore_port,
        )
    if args.command == "start":
        started = time.monotonic()
        try:
            cluster.start()
        except ClusterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(
            f"Spark cluster {cluster.master_url} up in "
            f"{time.monotonic() - started:.0f} s; point sparkify at it with\n"
            f'  eval "$(scripts/cluster.sh env --state {cluster.state_dir})"',
            file=sys.stderr,
        )
    elif args.command == "stop":
        cluster.stop()
    elif args.command == "status":
        states = cluster.running()
        for name, alive in states.items():
            print(f"{name}: {'running' if alive else 'stopped'}")
        if not states:
            print(
                f"not running: no cluster recorded in {cluster.state_dir} "
                "(scripts/cluster.sh start starts one)"
            )
        return 0 if states and all(states.values()) else 1
    else:
        for key, value in cluster.environment(args.target).items():
            print(f"export {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
