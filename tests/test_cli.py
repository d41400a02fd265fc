"""The ``sparkify`` command's own behaviour: one-line errors, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
