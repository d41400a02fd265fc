"""Where a run keeps its files, and the settings shared by every step."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SERVING_URL_ENV",
    "WAREHOUSE_ENV",
    "WORKDIR_ENV",
    "Workdir",
    "default_workdir",
]

WORKDIR_ENV = "SPARKIFY_WORKDIR"
SERVING_URL_ENV = "SPARKIFY_SERVING_URL"
WAREHOUSE_ENV = "SPARKIFY_WAREHOUSE"


def default_workdir() -> Path:
    """The workdir named by ``SPARKIFY_WORKDIR``, else ``./work``."""
    return Path(os.environ.get(WORKDIR_ENV, "work")).expanduser().resolve()


@dataclass(frozen=True)
class Workdir:
    """The layout of one workdir: warehouse, metastore, reports, MLflow, serving.

    Two workdirs never share state, so two runs can be kept apart by giving
    each its own.
    """

    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str] | None = None) -> Workdir:
        root = Path(path).expanduser().resolve() if path else default_workdir()
        return cls(root)

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def warehouse_uri(self) -> str:
        """``SPARKIFY_WAREHOUSE`` when set (a shared path or an object-store URI
        for a cluster), else ``warehouse/`` in the workdir."""
        return os.environ.get(WAREHOUSE_ENV, "").rstrip("/") or str(self.warehouse)

    @property
    def scratch_uri(self) -> str:
        """Where ingestion stages a batch: beside the tables when the warehouse
        is elsewhere (executors on other machines write it), else ``ingest/``."""
        if os.environ.get(WAREHOUSE_ENV):
            return f"{self.warehouse_uri}/_sparkify_ingest"
        return str(self.root / "ingest")

    @property
    def metastore(self) -> Path:
        return self.root / "metastore_db"

    @property
    def spark_local(self) -> Path:
        return self.root / "spark-tmp"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def data_docs(self) -> Path:
        return self.reports / "data_docs"

    @property
    def gx_project(self) -> Path:
        return self.root / "gx"

    @property
    def mlflow(self) -> Path:
        """The default MLflow tracking store and model registry."""
        return self.root / "mlflow"

    @property
    def dbt_target(self) -> Path:
        return self.root / "dbt_target"

    @property
    def serving_db(self) -> Path:
        return self.root / "serving.db"

    @property
    def serving_url(self) -> str:
        """``SPARKIFY_SERVING_URL`` when set, else SQLite in the workdir."""
        return os.environ.get(SERVING_URL_ENV) or f"sqlite:///{self.serving_db}"

    def create(self) -> Workdir:
        for path in (
            self.warehouse,
            self.reports,
            self.mlflow,
            self.spark_local,
            self.root / "logs",
        ):
            path.mkdir(parents=True, exist_ok=True)
        return self
