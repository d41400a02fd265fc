"""Runs and models in MLflow: every training run logged, the champion an alias.

By default the tracking and registry store is SQLite under
``WORKDIR/mlflow/`` (``mlflow.db`` and ``artifacts/``); ``--tracking-uri``
or ``MLFLOW_TRACKING_URI`` points elsewhere, e.g. a tracking server. The
registered model ``sparkify-churn`` gets one version per trained challenger;
the ``champion`` alias names the version ``sparkify score`` uses.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from ml._evaluation import format_reports
from ml._training import ChurnModel
from sparkify.config import WAREHOUSE_ENV, Workdir
from sparkify.engine import copy_from_local, copy_to_local, delete_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from xgboost.spark import SparkXGBClassifierModel

__all__ = [
    "CHAMPION_ALIAS",
    "EXPERIMENT",
    "REGISTERED_MODEL",
    "Registry",
    "RegistryError",
    "tracking_uri",
]

log = logging.getLogger(__name__)

EXPERIMENT = "sparkify-churn"
REGISTERED_MODEL = "sparkify-churn"
CHAMPION_ALIAS = "champion"
_MODEL_DIR = "model"
_RECORD = "churn_model.json"


class RegistryError(RuntimeError):
    """The MLflow store cannot be reached or holds something unexpected."""


def _active_spark() -> SparkSession:
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RegistryError("a SparkSession is needed to move models; none runs")
    return spark


def tracking_uri(workdir: Workdir, uri: str | None = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else SQLite in the workdir."""
    return (
        uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{workdir.mlflow / 'mlflow.db'}"
    )


@dataclass
class Registry:
    """The MLflow tracking store and model registry at one URI.

    Spark writes and reads a model's files on its executors, so on a cluster
    with a shared warehouse (``SPARKIFY_WAREHOUSE``) models pass through
    ``shared`` on its file system on their way to and from MLflow.
    """

    uri: str
    artifact_root: Path | None = None
    shared: str | None = None

    @classmethod
    def at(cls, workdir: Workdir, uri: str | None = None) -> Registry:
        """The store for ``workdir``; a SQLite one keeps artifacts beside it.

        Any other URI (a tracking server) decides where artifacts go itself.
        """
        resolved = tracking_uri(workdir, uri)
        shared = (
            f"{workdir.scratch_uri}/models" if os.environ.get(WAREHOUSE_ENV) else None
        )
        try:
            url = make_url(resolved)
        except Exception:  # noqa: BLE001 - not a database URL: http(s) or a path
            return cls(resolved, shared=shared)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return cls(resolved, shared=shared)
        database = Path(url.database).resolve()
        database.parent.mkdir(parents=True, exist_ok=True)
        return cls(resolved, database.parent / "artifacts", shared)

    def _save_spark_model(self, model: ChurnModel, local: str) -> None:
        if self.shared is None:
            model.spark_model.write().overwrite().save(local)
            return
        spark, shared = _active_spark(), f"{self.shared}/{uuid.uuid4().hex}"
        model.spark_model.write().overwrite().save(shared)
        try:
            copy_to_local(spark, shared, local)
        finally:
            delete_path(spark, shared)

    def _load_spark_model(self, local: Path) -> SparkXGBClassifierModel:
        from xgboost.spark import SparkXGBClassifierModel

        if self.shared is None:
            return SparkXGBClassifierModel.load(str(local))
        spark, shared = _active_spark(), f"{self.shared}/{uuid.uuid4().hex}"
        copy_from_local(spark, str(local), shared)
        try:
            return SparkXGBClassifierModel.load(shared)
        finally:
            delete_path(spark, shared)

    def _client(self):  # noqa: ANN202 - MlflowClient, imported lazily
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _experiment_id(self) -> str:
        client = self._client()
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        location = self.artifact_root.as_uri() if self.artifact_root else None
        return client.create_experiment(EXPERIMENT, artifact_location=location)

    def log_challenger(self, model: ChurnModel) -> ChurnModel:
        """Log a run (params, metrics, features, report, model) and register it.

        Sets ``model.run_id`` and ``model.registry_version``; returns the model.
        """
        from mlflow.entities import Metric, Param

        if model.spark_model is None:
            raise ValueError("only a freshly trained model can be logged")
        # The client, not mlflow's fluent API: mlflow.set_tracking_uri would
        # set MLFLOW_TRACKING_URI for the whole process and its children.
        client = self._client()
        run = client.create_run(self._experiment_id())
        model.run_id = run_id = run.info.run_id
        params = {
            **{f"xgb_{k}": v for k, v in model.params.items()},
            "pos_weight": round(model.pos_weight, 4),
            "calibration": model.calibration.method,
            "calibration_slope": round(model.calibration.slope, 6),
            "calibration_intercept": round(model.calibration.intercept, 6),
            "threshold": round(model.threshold, 6),
            "best_iteration": model.best_iteration,
            "horizon_days": model.horizon_days,
            "fit_cutoffs": ",".join(model.fit_cutoffs),
            "validation_cutoff": model.validation_cutoff,
            "evaluation_cutoff": model.evaluation_cutoff,
            "train_rows": model.train_rows,
            "train_positives": model.train_positives,
            "feature_count": len(model.features),
        }
        metrics = {f"xgb_{k}": v for k, v in model.evaluation.metrics().items()}
        if model.baseline:
            metrics |= {f"baseline_{k}": v for k, v in model.baseline.metrics().items()}
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        client.log_dict(run_id, {"features": model.features}, "features.json")
        reports = [model.evaluation, *([model.baseline] if model.baseline else [])]
        client.log_dict(
            run_id,
            {"reports": [report.to_dict() for report in reports]},
            "evaluation.json",
        )
        client.log_text(run_id, format_reports(reports), "evaluation.txt")
        with tempfile.TemporaryDirectory(prefix="sparkify-model-") as folder:
            self._save_spark_model(model, f"{folder}/spark_model")
            Path(folder, _RECORD).write_text(model.to_json())
            client.log_artifacts(run_id, folder, _MODEL_DIR)
        client.set_terminated(run_id)
        source = f"{run.info.artifact_uri}/{_MODEL_DIR}"
        try:
            client.create_registered_model(REGISTERED_MODEL)
        except Exception as exc:  # noqa: BLE001 - MLflow raises on an existing name
            if "already exists" not in str(exc).lower():
                raise
        version = client.create_model_version(
            REGISTERED_MODEL, source, run_id=model.run_id
        )
        model.registry_version = str(version.version)
        client.set_model_version_tag(
            REGISTERED_MODEL,
            model.registry_version,
            "evaluation_cutoff",
            model.evaluation_cutoff,
        )
        log.info(
            "logged run %s as %s %s",
            model.run_id,
            REGISTERED_MODEL,
            model.version,
        )
        return model

    def record_decision(self, model: ChurnModel, decision: str, promoted: bool) -> None:
        """Keep the promotion decision with the challenger's run and version."""
        client = self._client()
        client.set_tag(model.run_id, "promotion_decision", decision)
        client.set_tag(model.run_id, "promoted", str(promoted).lower())
        client.set_model_version_tag(
            REGISTERED_MODEL, model.registry_version, "promotion_decision", decision
        )
        client.log_text(model.run_id, decision, "promotion_decision.txt")

    def promote(self, model: ChurnModel) -> None:
        self._client().set_registered_model_alias(
            REGISTERED_MODEL, CHAMPION_ALIAS, model.registry_version
        )
        log.info("model %s is the champion", model.version)

    def champion(self, *, load: bool = True) -> ChurnModel | None:
        """The champion's record (and Spark model, with ``load``), or ``None``."""
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        client = self._client()
        try:
            version = client.get_model_version_by_alias(
                REGISTERED_MODEL, CHAMPION_ALIAS
            )
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        local = Path(
            download_artifacts(artifact_uri=version.source, tracking_uri=self.uri)
        )
        try:
            model = ChurnModel.from_json((local / _RECORD).read_text())
        except (OSError, json.JSONDecodeError, TypeError, KeyError) as exc:
            raise RegistryError(
                f"{REGISTERED_MODEL} version {version.version} at {version.source} "
                f"has no readable {_RECORD} ({exc}), so the champion cannot "
                "score; `sparkify train` trains and promotes a new one"
            ) from exc
        model.registry_version = str(version.version)
        model.run_id = version.run_id or model.run_id
        if load:
            model.spark_model = self._load_spark_model(local / "spark_model")
        return model
