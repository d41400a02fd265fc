"""The chat handlers, answering from a real SQLite serving database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from chat_ui import answer
from chat_ui.handlers import MAX_MESSAGE_CHARS, as_of_line, example_messages

REPO = Path(__file__).resolve().parents[2]


def _count_customers(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("select count(*) from customers").fetchone()[0]


def test_answer_for_a_scored_customer_shows_profile_risk_and_activity(serving_url):
    card = answer("39", serving_url)

    assert "Colin Freeman · customer 39" in card
    assert "**Churn risk: 73.4% (high)**" in card
    assert "`xgb-7`" in card and "features cut off 2018-11-20" in card
    assert "**Level:** paid" in card and "**Gender:** male" in card
    assert "**Location:** Bakersfield, CA" in card
    assert "**Registered:** 2018-09-02" in card and "**Tenure:** 89 days" in card
    assert "**Last active:** 2018-11-30" in card
    assert "**Activity up to 2018-12-01**" in card
    assert "| Sessions | 3 | 11 | 19 | -42% |" in card
    assert "| Songs played | 147 | 612 | 1,034 | -41% |" in card
    assert "| Listening minutes | 576 | 2,431 | 4,103 | -41% |" in card
    assert "| Thumbs down | 2 | 6 | 1 | +500% |" in card
    assert "| Adverts played | 0 | 0 | 0 | – |" in card
    assert "| Errors | 0 | 1 | 0 | new |" in card


def test_answer_for_a_scored_customer_gives_the_reasons_and_the_action(serving_url):
    card = answer("39", serving_url)

    assert "**What raises the risk most:**" in card
    assert (
        "- listening fell 60% in the last week compared with the three before\n"
        "- 2 errors in the last 28 days" in card
    )
    assert (
        "**Suggested action:** Book a technical-support follow-up about the "
        "errors they ran into." in card
    )


def test_answer_for_an_unscored_customer_gives_no_reasons(serving_url):
    card = answer("100012", serving_url)

    assert "raises the risk" not in card and "Suggested action" not in card


@pytest.mark.parametrize(
    "message",
    [
        "customer 39 is asking about ads",
        "id: 39",
        "she has 7 songs missing, account 39",
        "39 or maybe 1042",
    ],
)
def test_answer_picks_the_first_number_that_is_a_known_customer(serving_url, message):
    assert "Colin Freeman · customer 39" in answer(message, serving_url)


def test_answer_for_a_cancelled_customer_gives_the_date_and_no_risk(serving_url):
    card = answer("Why did 1042 leave?", serving_url)

    assert "Darianna Carpenter · customer 1042" in card
    assert "**Cancelled** on 2018-10-31" in card
    assert "%" not in card.split("**Activity")[0]
    assert "Churn risk" not in card and "high" not in card


def test_answer_never_rates_a_cancelled_customer_even_with_a_score(sample, serving_url):
    sample.churn_scores.loc[1] = sample.churn_scores.loc[0]
    sample.churn_scores.loc[1, ["customer_id", "churn_probability"]] = ["1042", 0.9]
    sample.publish(serving_url)

    card = answer("1042", serving_url)

    assert "**Cancelled** on 2018-10-31" in card and "90.0%" not in card


def test_answer_for_an_unscored_customer_quotes_the_model_status(serving_url):
    card = answer("100012", serving_url)

    assert "Lina Park · customer 100012" in card
    assert (
        "No churn model has scored this customer yet. Model status: Customers who "
        "joined after "
        "2018-11-20 are scored next run." in card
    )
    assert "| Adverts played | 9 | 9 | 0 | new |" in card


def test_answer_for_an_unscored_customer_without_model_status(sample, serving_url):
    del sample.facts["model_status"]
    sample.publish(serving_url)

    card = answer("100012", serving_url)

    assert "No churn model has scored this customer yet." in card


def test_answer_for_an_unknown_id_says_not_found_and_offers_real_ids(serving_url):
    reply = answer("customer 555 called", serving_url)

    assert "`555` was not found" in reply
    assert "`100012`" in reply and "`1042`" in reply and "`39`" in reply
    assert '"customer 39 is asking about ads"' in reply


@pytest.mark.parametrize("message", ["hello", "help", "what can you do?", ""])
def test_answer_without_an_id_offers_help_with_real_ids(serving_url, message):
    reply = answer(message, serving_url)

    assert "last 7 and 28 days" in reply
    assert "`100012`" in reply and "`39`" in reply


def test_answer_refuses_messages_over_the_limit(serving_url):
    reply = answer("39 " + "x" * MAX_MESSAGE_CHARS, serving_url)

    assert "longer than 2,000 characters" in reply and "Colin" not in reply


def test_answer_without_a_database_file_says_to_run_sparkify(tmp_path):
    path = tmp_path / "missing" / "serving.db"

    reply = answer("39", f"sqlite:///{path}")

    assert "Run `sparkify run` first" in reply
    assert not path.exists()


def test_answer_with_an_empty_database_says_to_run_sparkify(tmp_path):
    path = tmp_path / "serving.db"
    sqlite3.connect(path).execute(
        "create table unrelated (x integer)"
    ).connection.close()

    assert "Run `sparkify run` first" in answer("hello", f"sqlite:///{path}")


def test_answer_with_a_corrupt_database_says_so_without_a_traceback(tmp_path):
    path = tmp_path / "serving.db"
    path.write_bytes(b"this is not a sqlite database" * 100)

    assert "could not read the serving database" in answer("39", f"sqlite:///{path}")


@pytest.mark.parametrize(
    "message",
    [
        "1 OR 1=1; DROP TABLE customers",
        "39'; DROP TABLE customers; --",
        "' OR '1'='1",
    ],
)
def test_answer_treats_sql_in_the_message_as_text(serving_url, serving_path, message):
    answer(message, serving_url)

    assert _count_customers(serving_path) == 3
    assert "was not found" in answer("1 OR 1=1", serving_url)


def test_answer_sees_a_database_republished_in_place(sample, serving_url):
    assert "73.4%" in answer("39", serving_url)

    sample.churn_scores.loc[0, ["churn_probability", "risk_band"]] = [0.12, "low"]
    sample.publish(serving_url)

    assert "**Churn risk: 12.0% (low)**" in answer("39", serving_url)


def test_answer_rejects_a_url_that_is_not_a_database_url():
    with pytest.raises(ValueError, match="url must be a SQLAlchemy URL"):
        answer("39", "not a url")


def test_as_of_line_and_examples_come_from_the_database(serving_url):
    assert as_of_line(serving_url) == (
        "Customer data as of **2018-12-01** · churn model `xgb-7`."
    )
    # Scored active customers first, cancelled ones last.
    assert example_messages(serving_url) == [
        "39",
        "customer 100012 is asking about ads",
        "What can you do?",
    ]


def test_chat_ui_answers_and_builds_its_app_without_importing_pyspark(serving_url):
    script = (
        "import sys, chat_ui\n"
        "assert 'gradio' not in sys.modules, 'chat_ui imported gradio eagerly'\n"
        f"assert 'Colin' in chat_ui.answer('39', {serving_url!r})\n"
        "chat_ui.build_app(" + repr(serving_url) + ")\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'pyspark')\n"
        "assert not leaked, leaked\n"
    )
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
