"""Engine settings: which target and master a run uses, and what it says when
a part of the cluster does not answer."""

from __future__ import annotations

import socket

import pytest

from sparkify.config import Workdir
from sparkify.engine import ClusterError, Engine
from tests.runs import CLUSTER_SETTINGS


@pytest.fixture(autouse=True)
def no_cluster_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLUSTER_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_target_follows_the_master_unless_given(tmp_path, monkeypatch):
    monkeypatch.setenv("HADOOP_CONF_DIR", "/etc/hadoop/conf")
    workdir = Workdir.at(tmp_path)

    local = Engine.from_settings(workdir)
    cluster = Engine.from_settings(workdir, master="spark://10.1.2.3:7077")
    yarn = Engine.from_settings(workdir, master="yarn")

    assert (local.target, local.master) == ("local", "local[*]")
    assert cluster.target == "cluster" and not cluster.is_local
    assert cluster.master_addresses() == [("10.1.2.3", 7077)]
    assert yarn.target == "cluster" and yarn.master_addresses() == []
    assert local.warehouse == str(tmp_path / "warehouse")


def test_the_warehouse_and_metastore_are_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARKIFY_WAREHOUSE", "s3a://bucket/sparkify/warehouse/")
    monkeypatch.setenv("SPARKIFY_METASTORE_URIS", "thrift://meta-1:9083")

    engine = Engine.from_settings(Workdir.at(tmp_path), target="thrift")

    assert engine.warehouse == "s3a://bucket/sparkify/warehouse"
    assert engine.metastore_uris_list() == ["thrift://meta-1:9083"]
    assert Workdir.at(tmp_path).scratch_uri == (
        "s3a://bucket/sparkify/warehouse/_sparkify_ingest"
    )


@pytest.mark.parametrize(
    ("target", "master", "said"),
    [
        ("dev", None, "--target (or SPARKIFY_DBT_TARGET) must be one of local, "),
        ("cluster", None, "--target cluster needs the cluster's master URL"),
        ("local", "spark://h:7077", "pick --target cluster (or thrift)"),
        ("thrift", None, "--target thrift needs SPARKIFY_METASTORE_URIS"),
        (None, "bogus", "should be spark://HOST:PORT, yarn or local[*], got 'bogus'"),
        (None, "spark//h:7077", "should be spark://HOST:PORT"),
        (None, "yarn", "--master yarn needs the cluster's Hadoop configuration"),
    ],
)
def test_settings_that_cannot_work_say_which_and_what_to_do(
    tmp_path, target, master, said
):
    with pytest.raises(ValueError) as raised:
        Engine.from_settings(Workdir.at(tmp_path), target=target, master=master)

    assert said in str(raised.value)


def test_yarn_may_take_its_hadoop_configuration_from_spark_env(tmp_path, monkeypatch):
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)
    (tmp_path / "spark-env.sh").write_text(
        "export HADOOP_CONF_DIR=${HADOOP_CONF_DIR:-/etc/hadoop/conf}\n"
    )
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))

    engine = Engine.from_settings(Workdir.at(tmp_path), master="yarn")

    assert engine.target == "cluster"


def test_a_master_host_that_does_not_resolve_is_named_so(tmp_path):
    master = "spark://no-such-host.invalid:7077"
    engine = Engine.from_settings(Workdir.at(tmp_path), master=master)

    with pytest.raises(ClusterError) as raised:
        engine.check()

    assert str(raised.value).startswith(
        f"cannot reach the Spark master {master} (no such host: no-such-host.invalid)"
    )


def test_an_unreachable_master_is_named_with_what_to_do(tmp_path):
    master = f"spark://127.0.0.1:{_dead_port()}"
    engine = Engine.from_settings(Workdir.at(tmp_path), master=master)

    with pytest.raises(ClusterError) as raised:
        engine.check()

    message = str(raised.value)
    assert message.startswith(f"cannot reach the Spark master {master}")
    assert "scripts/cluster.sh start" in message
    assert "Nothing was read or written." in message


def test_an_unreachable_metastore_is_named_with_its_setting(tmp_path, monkeypatch):
    uri = f"thrift://127.0.0.1:{_dead_port()}"
    monkeypatch.setenv("SPARKIFY_METASTORE_URIS", uri)
    engine = Engine.from_settings(Workdir.at(tmp_path), target="thrift")

    with pytest.raises(ClusterError, match="cannot reach the Hive metastore"):
        engine.check()
    lost = engine.lost("dbt build", ConnectionError("reset"))

    assert lost is not None
    assert str(lost).startswith(f"lost the Hive metastore {uri}")
    assert "during step 'dbt build'" in str(lost)
    assert "rerun the same command" in str(lost)


def test_cluster_status_without_a_cluster_says_it_is_not_running(tmp_path, capsys):
    from sparkify.cluster import main

    code = main(["status", "--state", str(tmp_path)])

    assert code == 1
    assert capsys.readouterr().out.startswith(
        f"not running: no cluster recorded in {tmp_path}"
    )
