"""The ``sparkify`` command's own behaviour: one-line errors, no tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.runs import sparkify as run_sparkify
from tests.shared_data import EVENTSIM_SMALL, shared_data


def sparkify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sparkify", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_generate_refuses_a_negative_user_count_in_one_line(tmp_path):
    result = sparkify("generate", "--out", str(tmp_path / "e.jsonl"), "--users", "-5")

    assert "users must be an integer >= 1, got -5" in _one_line_error(result)


def test_generate_refuses_to_overwrite_without_the_flag(tmp_path):
    out = tmp_path / "e.jsonl"
    sparkify("generate", "--out", str(out), "--users", "3", "--days", "2")

    result = sparkify("generate", "--out", str(out), "--users", "3", "--days", "2")

    assert "already exists" in _one_line_error(result)


def test_run_names_an_input_that_does_not_exist(tmp_path):
    result = sparkify(
        "run", "--input", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "w")
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"--input {tmp_path / 'nowhere'}: no such file" in result.stderr


def test_generate_with_compare_prints_the_realism_report(tmp_path):
    real = tmp_path / "real.jsonl"
    sparkify(
        "generate", "--out", str(real), "--users", "20", "--days", "7", "--seed", "2"
    )

    result = sparkify(
        "generate", "--out", str(tmp_path / "gen.jsonl"), "--users", "20",
        "--days", "7", "--seed", "3", "--compare", str(real),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "events per session (mean)" in result.stdout
    assert "figures within 20%" in result.stdout


def test_compare_names_a_missing_file(tmp_path: Path):
    missing = tmp_path / "missing.jsonl"

    result = sparkify("compare", str(missing), str(missing))

    assert str(missing) in _one_line_error(result)


def test_ask_without_a_serving_database_says_to_run_first(tmp_path):
    result = sparkify("ask", "customer 12", "--workdir", str(tmp_path))

    assert result.returncode == 0
    assert "Run sparkify run first" in " ".join(result.stdout.split())


def _serving_db_with_quality(path: Path, status: str) -> str:
    import pandas as pd

    from sparkify.serving import record_quality

    url = f"sqlite:///{path}"
    rows = [
        {
            "run_id": "r1",
            "validated_at": "2026-12-04T06:00:00+00:00",
            "suite": "events",
            "table_name": "raw.events",
            "expectation": expectation,
            "severity": severity,
            "success": success,
            "observed": observed,
            "examples": examples,
            "why": "",
        }
        for expectation, severity, success, observed, examples in (
            ("expect_column_values_to_be_in_set(page)", "critical",
             status == "passed", "1 of 3 rows unexpected",
             '["/logs/podcast.jsonl:2 (page=\'Podcast\')"]'),
            ("expect_column_values_to_be_in_set(status)", "warning",
             False, "1 of 3 rows unexpected", '["500"]'),
            ("expect_column_values_to_not_be_null(ts)", "critical",
             True, "0 of 3 rows unexpected", "[]"),
        )
    ]  # fmt: skip
    facts = {
        "quality_status": status,
        "quality_checked_at": "2026-12-04T06:00:00+00:00",
        "quality_summary": "1 of 3 expectations passed on raw.events",
        "data_docs": str(path.parent / "docs" / "index.html"),
    }
    record_quality(url, pd.DataFrame(rows), facts)
    return url


def test_quality_prints_failures_and_the_data_docs_and_exits_1_when_stopped(
    tmp_path,
):
    url = _serving_db_with_quality(tmp_path / "serving.db", "failed")

    result = sparkify("quality", "--db", url)

    assert result.returncode == 1, result.stderr
    out = " ".join(result.stdout.split())
    assert "latest validation: failed" in out
    assert "expect_column_values_to_be_in_set(page)" in out
    assert "/logs/podcast.jsonl:2" in out
    assert "expect_column_values_to_be_in_set(status)" in out
    # Passed expectations are listed only with --all.
    assert "to_not_be_null(ts)" not in out
    assert (tmp_path / "docs" / "index.html").as_uri() in result.stdout


def test_quality_lists_every_expectation_with_all_and_exits_0_when_passed(tmp_path):
    url = _serving_db_with_quality(tmp_path / "serving.db", "passed")

    result = sparkify("quality", "--db", url, "--all")

    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "latest validation: passed" in out
    assert "expect_column_values_to_not_be_null(ts)" in out


def test_quality_without_results_says_to_run_first(tmp_path):
    result = sparkify("quality", "--workdir", str(tmp_path))

    assert "run `sparkify run` first" in _one_line_error(result)


def test_score_refuses_a_broken_rules_file_in_one_line_before_spark_starts(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - {name: x, drivers: [nope], action: y}\ndefault: z\n")

    result = sparkify("score", "--rules", str(rules), "--workdir", str(tmp_path))

    line = _one_line_error(result)
    assert f"rules file {rules}: rule 1 ('x'): unknown driver(s) ['nope']" in line


def test_serve_on_the_network_without_a_login_is_refused_in_one_line(
    tmp_path, monkeypatch
):
    for name in ("SPARKIFY_APP_USERNAME", "SPARKIFY_APP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SPARKIFY_APP_USERS_FILE", raising=False)

    result = sparkify("serve", "--public", "--workdir", str(tmp_path))

    line = _one_line_error(result)
    assert "host '0.0.0.0' opens the app to the network" in line
    assert "SPARKIFY_APP_USERNAME and SPARKIFY_APP_PASSWORD" in line
    assert "serving" not in result.stdout  # it never claims to be serving


def test_serve_names_the_line_of_a_bad_users_file(tmp_path):
    users = tmp_path / "users"
    users.write_text("ana:agent:not-a-hash\n")

    result = sparkify("serve", "--public", "--users-file", str(users))

    assert f"{users}:1: the hash must look like" in _one_line_error(result)


def test_app_user_prints_a_line_the_users_file_accepts(tmp_path):
    from chat_ui._auth import load_users

    result = subprocess.run(
        [sys.executable, "-m", "sparkify", "app-user", "ana", "--role", "analyst"],
        input="long-password\nlong-password\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = result.stdout.strip().splitlines()[-1]
    (tmp_path / "users").write_text(line + "\n")

    users = load_users(tmp_path / "users")
    assert line.startswith("ana:analyst:pbkdf2_sha256$")
    assert users.check("ana", "long-password") and not users.sees_names("ana")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_spark_that_cannot_start_is_said_without_a_traceback(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text("spark.driver.memory 1x\n")
    logs = shared_data(EVENTSIM_SMALL)

    result = run_sparkify(
        "run", "--input", str(logs), "--workdir", str(tmp_path / "work"),
        env={"SPARK_CONF_DIR": str(conf)},
    )  # fmt: skip

    message = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stderr
    assert "error: Spark did not start with the master 'local[*]'" in message
    assert "SPARK_CONF_DIR" in message
    assert "Traceback" not in result.stderr and "PySparkRuntimeError" not in message


def test_an_unreachable_master_stops_the_run_at_once_naming_it(tmp_path):
    master = f"spark://127.0.0.1:{_free_port()}"
    logs = shared_data(EVENTSIM_SMALL)
    started = time.monotonic()

    result = run_sparkify(
        "run", "--input", str(logs), "--workdir", str(tmp_path),
        env={"SPARKIFY_SPARK_MASTER": master},
    )  # fmt: skip

    message = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stderr
    assert f"cannot reach the Spark master {master}" in message
    assert "scripts/cluster.sh start" in message and "--master" in message
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "warehouse" / "raw.db").exists()
