#!/usr/bin/env bash
# A real Spark standalone cluster on this machine, bound to 127.0.0.1, from
# the Spark distribution inside the PySpark wheel:
#   scripts/cluster.sh start [--thrift]  a master and two workers (with --thrift
#                                        also a Hive metastore and a Spark
#                                        Thrift Server on the cluster)
#   eval "$(scripts/cluster.sh env)"     point sparkify run at it
#   scripts/cluster.sh status | stop
# State, logs and ids in work/cluster (--state DIR); --help for the ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m sparkify.cluster "$@"
