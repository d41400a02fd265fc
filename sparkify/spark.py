"""The one SparkSession a pipeline run shares with dbt, Great Expectations and ML."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark.errors import PySparkRuntimeError
from pyspark.sql import SparkSession

from sparkify.config import Workdir
from sparkify.engine import MASTER_ENV, ClusterError, Engine

__all__ = ["MASTER_ENV", "engine_conf", "session_conf", "spark_session"]

log = logging.getLogger(__name__)

_LOG4J = Path(__file__).with_name("log4j2.properties")


def session_conf(workdir: Workdir, engine: Engine | None = None) -> dict[str, str]:
    """Spark settings that place the warehouse and metastore as ``engine`` says.

    Without an external metastore both sit in ``workdir`` (Derby, embedded).
    ``profiles/profiles.yml`` passes the same settings to dbt's ``session``
    method, so ``dbt build`` run by hand sees the tables a pipeline run wrote.
    """
    engine = engine or Engine.from_settings(workdir)
    if engine.metastore_uris:
        metastore = {"spark.hadoop.hive.metastore.uris": engine.metastore_uris}
    else:
        metastore = {
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={workdir.metastore};create=true"
            )
        }
    return {
        "spark.sql.warehouse.dir": engine.warehouse,
        **metastore,
        "spark.local.dir": str(workdir.spark_local),
        **engine_conf(),
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={workdir.root} -Duser.timezone=UTC "
            f"-Dlog4j.configurationFile={_LOG4J} "
            f"-Dsparkify.log.dir={workdir.root / 'logs'}"
        ),
    }


def engine_conf() -> dict[str, str]:
    """How SQL must behave for the Python steps and dbt to compute alike.

    A Spark Thrift Server that dbt's ``thrift`` target uses needs them too
    (``sparkify.cluster`` starts its own with them).
    """
    return {
        "spark.sql.session.timeZone": "UTC",
        # dbt-spark switches ANSI mode off on every connection; agree with it
        # from the start so Python steps and dbt models compute alike.
        "spark.sql.ansi.enabled": "false",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.shuffle.partitions": os.environ.get(
            "SPARKIFY_SHUFFLE_PARTITIONS", "8"
        ),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }


def spark_session(
    workdir: Workdir, master: str | None = None, *, engine: Engine | None = None
) -> SparkSession:
    """Start (or return) the process-wide SparkSession with Hive support.

    ``engine`` defaults to the settings in the environment, with ``master``
    (else ``SPARKIFY_SPARK_MASTER``, else ``local[*]``). On a cluster, other
    Spark settings (executor memory and cores, ``spark.cores.max``) come
    from ``spark-defaults.conf`` in ``SPARK_CONF_DIR``, as for any Spark job.
    """
    engine = engine or Engine.from_settings(workdir, master=master)
    master = engine.master
    workdir.create()
    # Python workers must run the driver's interpreter, which has our code.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("sparkify").master(master)
    for key, value in session_conf(workdir, engine).items():
        builder = builder.config(key, value)
    driver_memory = os.environ.get("SPARKIFY_DRIVER_MEMORY")
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    log.info(
        "starting Spark: master=%s target=%s warehouse=%s metastore=%s workdir=%s",
        master,
        engine.target,
        engine.warehouse,
        engine.metastore_uris or "Derby in the workdir",
        workdir.root,
    )
    try:
        spark = builder.enableHiveSupport().getOrCreate()
    except PySparkRuntimeError as exc:
        if exc.getCondition() != "JAVA_GATEWAY_EXITED":
            raise
        raise ClusterError(
            f"Spark did not start with the master {master!r}: its Java process "
            "exited, for the reason it printed just above. Check --master (or "
            f"{MASTER_ENV}) and the settings in SPARK_CONF_DIR. Nothing was read "
            "or written."
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark
