"""The one SparkSession a pipeline run shares with dbt, Great Expectations and ML."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from sparkify.config import Workdir

__all__ = ["MASTER_ENV", "session_conf", "spark_session"]

log = logging.getLogger(__name__)

MASTER_ENV = "SPARKIFY_SPARK_MASTER"
_LOG4J = Path(__file__).with_name("log4j2.properties")


def session_conf(workdir: Workdir) -> dict[str, str]:
    """Spark settings that place the warehouse and metastore in ``workdir``.

    ``profiles/profiles.yml`` passes the same settings to dbt's ``session``
    method, so ``dbt build`` run by hand sees the tables a pipeline run wrote.
    """
    return {
        "spark.sql.warehouse.dir": str(workdir.warehouse),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={workdir.metastore};create=true"
        ),
        "spark.local.dir": str(workdir.spark_local),
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
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={workdir.root} -Duser.timezone=UTC "
            f"-Dlog4j.configurationFile={_LOG4J}"
        ),
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }


def spark_session(workdir: Workdir, master: str | None = None) -> SparkSession:
    """Start (or return) the process-wide SparkSession with Hive support.

    ``master`` defaults to ``SPARKIFY_SPARK_MASTER``, else ``local[*]``.
    """
    master = master or os.environ.get(MASTER_ENV) or "local[*]"
    workdir.create()
    # Python workers must run the driver's interpreter, which has our code.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("sparkify").master(master)
    for key, value in session_conf(workdir).items():
        builder = builder.config(key, value)
    driver_memory = os.environ.get("SPARKIFY_DRIVER_MEMORY")
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    log.info("starting Spark: master=%s workdir=%s", master, workdir.root)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
