"""The dbt project: its unit tests pass, and its docs describe what the models make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkify.generate import generate
from sparkify.ingest import ingest
from sparkify.transform import dbt_invoke

RAW, SCHEMA = "dbtproj_raw", "dbtproj_analytics"
MARTS = ("customer_features", "churn_labels", "customer_profiles")
# The models whose windowing and labelling logic the unit tests pin.
LOGIC_MODELS = {
    "stg_sparkify__events",
    "int_customers__daily_activity",
    "int_customers__activity_windows",
    "int_cutoffs",
    "customer_features",
    "churn_labels",
}

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def project(spark, workdir, tmp_path_factory) -> dict[str, object]:
    """Tiny logs built once and documented, with dbt's artifacts read at once.

    The build runs the models and the unit tests; the data tests are left to
    the builds of ``test_features.py``. The artifacts are read before any
    other dbt run in the session rewrites the target folder.
    """
    folder = tmp_path_factory.mktemp("dbt_project")
    logs = generate(folder / "events.jsonl", users=30, days=30, seed=11).path
    ingest(spark, [logs], workdir, database=RAW)
    variables = {"raw_schema": RAW}
    target = workdir.dbt_target

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SPARKIFY_DBT_SCHEMA", SCHEMA)
        built = dbt_invoke(
            workdir,
            ["build", "--exclude-resource-type", "test"],
            variables=variables,
        )
        run_results = json.loads((target / "run_results.json").read_text())
        dbt_invoke(workdir, ["docs", "generate"], variables=variables)

    return {
        "built": built,
        "run_results": run_results,
        "manifest": json.loads((target / "manifest.json").read_text()),
        "catalog": json.loads((target / "catalog.json").read_text()),
        "index_html": _read_if_exists(target / "index.html"),
    }


def _read_if_exists(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _models(manifest: dict) -> dict[str, dict]:
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def test_unit_tests_pass_for_the_windowing_and_labelling_models(project):
    unit_tests = project["manifest"]["unit_tests"]
    statuses = {
        result["unique_id"]: result["status"]
        for result in project["run_results"]["results"]
        if result["unique_id"].startswith("unit_test.")
    }

    assert statuses.keys() == unit_tests.keys()
    assert set(statuses.values()) == {"pass"}
    assert {test["model"] for test in unit_tests.values()} >= LOGIC_MODELS


def test_docs_catalog_lists_the_marts_with_their_columns(spark, project):
    catalog = project["catalog"]["nodes"]

    for mart in MARTS:
        entry = catalog[f"model.sparkify.{mart}"]
        built = spark.table(f"{SCHEMA}.{mart}").columns
        assert entry["metadata"]["schema"] == SCHEMA, mart
        assert sorted(entry["columns"]) == sorted(built), mart
    assert "dbt Docs" in project["index_html"]


def test_every_model_and_column_is_described(project):
    models = _models(project["manifest"])
    catalog = project["catalog"]["nodes"]

    for name, node in models.items():
        built = set(catalog[node["unique_id"]]["columns"])
        documented = {
            column: spec["description"].strip()
            for column, spec in node["columns"].items()
        }
        assert node["description"].startswith("One row per"), name
        assert built == documented.keys(), (name, built ^ documented.keys())
        assert all(documented.values()), (name, documented)


def test_every_raw_column_is_described(project):
    sources = project["manifest"]["sources"]
    catalog = project["catalog"]["sources"]

    for unique_id, source in sources.items():
        built = set(catalog[unique_id]["columns"])
        documented = {
            column
            for column, spec in source["columns"].items()
            if spec["description"].strip()
        }
        assert built == documented, (unique_id, built ^ documented)


def test_exposures_name_the_models_they_read(project):
    exposures = project["manifest"]["exposures"]
    reads = {
        exposure["name"]: set(exposure["depends_on"]["nodes"])
        for exposure in exposures.values()
    }

    assert reads["churn_model"] == {
        "model.sparkify.customer_features",
        "model.sparkify.churn_labels",
        "model.sparkify.int_cutoffs",
    }
    assert "model.sparkify.customer_profiles" in reads["agents_app"]
    assert {exposure["type"] for exposure in exposures.values()} == {
        "ml",
        "application",
    }
