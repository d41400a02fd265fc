"""The chat handler, answering every kind of question from a real SQLite database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from chat_ui import (
    MAX_MESSAGE_CHARS,
    Conversation,
    answer,
    as_of_line,
    chat,
    example_messages,
)

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
    assert "`39`" in reply and "`51`" in reply and "`52`" in reply
    assert '"customer 39 is asking about ads"' in reply


@pytest.mark.parametrize(
    "message", ["hello", "Hi there!", "help", "what can you do?", "", "thanks"]
)
def test_answer_to_a_greeting_or_help_lists_what_it_can_do_with_real_examples(
    serving_url, message
):
    reply = answer(message, serving_url)

    assert "last 7 and 28 days" in reply
    assert "- 39\n" in reply and "- customer 51 is asking about ads" in reply
    assert "- Lina Park" in reply
    assert "- top 10 at-risk paid customers in CA" in reply


@pytest.mark.parametrize(
    "message",
    [
        "what is the weather like in Paris today?",
        "what's the weather",
        "is it raining?",
    ],
)
def test_answer_it_cannot_give_says_so_and_offers_examples(serving_url, message):
    reply = chat(message, serving_url)

    assert reply.kind == "cannot-answer"
    assert reply.text.startswith("I can't answer that from the customer data.")
    assert "- churn rate by level" in reply.text


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

    assert _count_customers(serving_path) == 9
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
    # Scored active customers first, cancelled ones last; the state with the
    # most scored customers.
    assert example_messages(serving_url) == [
        "39",
        "customer 51 is asking about ads",
        "Lina Park",
        "top 10 at-risk paid customers in CA",
        "how many customers cancelled last week",
        "churn rate by level",
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


# -- follow-ups ---------------------------------------------------------------


def _conversation(url: str, *messages: str) -> list:
    replies, conversation = [], None
    for message in messages:
        reply = chat(message, url, conversation)
        replies.append(reply)
        conversation = reply.conversation
    return replies


def test_follow_ups_are_about_the_customer_last_shown(serving_url):
    card, why, offer = _conversation(serving_url, "39", "why?", "what should I offer?")

    assert card.conversation == Conversation(customer_id="39")
    assert why.kind == "reasons" and "Colin Freeman · customer 39" in why.text
    assert (
        "1. listening fell 60% in the last week compared with the three before\n"
        "2. 2 errors in the last 28 days" in why.text
    )
    assert offer.kind == "offer"
    assert (
        "**Suggested action:** Book a technical-support follow-up about the errors "
        "they ran into. (rule: repeated errors)" in offer.text
    )


def test_a_comparison_with_other_paid_users_leaves_the_customer_out(serving_url):
    *_, compare = _conversation(
        serving_url, "39", "how does that compare with other paid users?"
    )

    # The other active paid customers are 51 (20 sessions, 400 songs) and 77
    # (10 sessions, 200 songs); 1042 and 201 cancelled.
    assert compare.kind == "compare"
    assert "average of the other 2 active paid customers" in compare.text
    assert "| Sessions, last 28 days | 11 | 15.0 |" in compare.text
    assert "| Songs played, last 28 days | 612 | 300.0 |" in compare.text
    assert (
        "Their churn risk, 73.4%, is higher than that of 100% of the other 2 "
        "scored paid customers." in compare.text
    )


def test_a_comparison_with_the_other_level_counts_all_of_its_customers(serving_url):
    reply = chat("compare 39 with free users", serving_url)

    # 100012 (unscored), 52 (5%) and 53 (22%) are the active free customers;
    # 39 is not one of them, so none is "other".
    assert (
        "average of the 3 active free customers (customer 39 is on the paid level)"
        in reply.text
    )
    assert "higher than that of 100% of the 2 scored free customers." in reply.text
    assert "other" not in reply.text


def test_a_comparison_for_a_cancelled_customer_counts_every_active_one(serving_url):
    reply = chat("how does 1042 compare with other paid users?", serving_url)

    # 39, 51 and 77 are the active paid customers; 1042 cancelled.
    assert "average of the 3 active paid customers (customer 1042 has cancelled)" in (
        reply.text
    )
    assert "| Sessions, last 28 days | 0 | 13.7 |" in reply.text


def test_a_follow_up_without_a_customer_asks_which_one(serving_url):
    reply = chat("why?", serving_url)

    assert reply.kind == "which-customer"
    assert "Which customer do you mean?" in reply.text


def test_why_for_a_cancelled_customer_gives_no_reasons(serving_url):
    reply = chat("why is 1042 at risk?", serving_url)

    assert "**Cancelled** on 2018-10-31" in reply.text
    assert "Why, strongest first" not in reply.text


def test_an_id_in_a_follow_up_switches_the_customer(serving_url):
    *_, why = _conversation(serving_url, "39", "and why is 77 at risk?")

    assert why.conversation.customer_id == "77"
    assert "Ethan Brooks · customer 77" in why.text


# -- names --------------------------------------------------------------------


@pytest.mark.parametrize(
    "message", ["Ethan Brooks", "ethan brooks", "I have Ethan Brooks on the line"]
)
def test_a_unique_name_gives_the_card(serving_url, message):
    reply = chat(message, serving_url)

    assert reply.kind == "card"
    assert "Ethan Brooks · customer 77" in reply.text


def test_a_shared_name_gives_a_list_to_pick_from(serving_url):
    choices, picked = _conversation(serving_url, "Kaylee Summers", "the second one")

    assert choices.kind == "name-choices"
    assert choices.text.startswith("2 customers match Kaylee Summers.")
    assert "| 1 | 51 | Kaylee Summers | paid | Fresno, CA | 41.0% |" in choices.text
    assert "| 2 | 52 | Kaylee Summers | free | Austin, TX | 5.0% |" in choices.text
    assert choices.conversation.choices == ("51", "52")
    assert "Kaylee Summers · customer 52" in picked.text


def test_a_first_name_alone_lists_everyone_with_it(serving_url):
    reply = chat("Kaylee", serving_url)

    assert reply.text.startswith("3 customers match Kaylee.")


@pytest.mark.parametrize("message", ["Zebediah Quux", "zebediah", "Who is Zebediah?"])
def test_an_unknown_name_is_said_to_be_unknown_with_examples(serving_url, message):
    reply = chat(message, serving_url)

    assert reply.kind == "name-not-found"
    assert reply.text.lower().startswith("i found no customer named zebediah")
    assert "- 39\n" in reply.text and "- churn rate by level" in reply.text


@pytest.mark.parametrize("message", ["the first one", "the second one", "last"])
def test_picking_from_a_list_when_none_was_shown_says_how_to_get_one(
    serving_url, message
):
    reply = chat(message, serving_url)

    assert reply.kind == "no-list"
    assert reply.text.startswith("There is no list in this conversation to pick")
    assert '"top 10 at-risk paid customers in CA"' in reply.text


def test_masked_names_are_hidden_and_name_look_ups_refused(serving_url):
    card = chat("39", serving_url, masked=True)
    by_name = chat("Colin Freeman", serving_url, masked=True)
    listed = chat("top 3 at-risk customers", serving_url, masked=True)

    assert "name hidden · customer 39" in card.text and "Colin" not in card.text
    assert by_name.kind == "name-refused" and "Colin" not in by_name.text
    assert "Freeman" not in listed.text and "Summers" not in listed.text


# -- lists and figures ----------------------------------------------------------


def test_top_at_risk_paid_customers_in_a_state_are_listed_highest_first(serving_url):
    reply = chat("top 10 at-risk paid customers in CA", serving_url)

    assert reply.kind == "list"
    lines = reply.text.splitlines()
    assert lines[0] == (
        "**All 3 scored active paid customers in CA**, most likely to cancel "
        "first, as of 2018-12-01:"
    )
    rows = [
        line for line in lines if line.startswith("| 1 ") or line.startswith("| 2 ")
    ]
    assert rows[0].startswith("| 1 | 39 | Colin Freeman | paid | CA | 73.4% (high) |")
    assert rows[1].startswith("| 2 | 51 | Kaylee Summers | paid | CA | 41.0% (high) |")
    assert reply.conversation.choices == ("39", "51", "77")
    # 10 is the length of the list, never a customer ID.
    assert "customer 10" not in reply.text


def test_a_state_can_be_named_and_the_list_shortened(serving_url):
    reply = chat("show the 2 riskiest customers in California", serving_url)

    assert "**The 2 customers in CA most likely to cancel** (of 4" in reply.text


def test_a_list_of_one_says_so_in_the_singular(serving_url):
    only = chat("top 5 at-risk free customers in TX", serving_url)
    first = chat("top 1 at-risk customers", serving_url)

    assert only.text.startswith(
        "**The only scored active free customer in TX**, as of 2018-12-01:"
    )
    assert first.text.startswith(
        "**The customer most likely to cancel** (of 5 scored active ones)"
    )


@pytest.mark.parametrize(
    "message", ["top 0 customers", "top 0 at-risk paid customers", "0 riskiest users"]
)
def test_a_list_of_none_gives_the_allowed_range(serving_url, message):
    reply = chat(message, serving_url)

    assert reply.kind == "list-size"
    assert reply.text.startswith("A list holds 1 to 50 customers")
    assert '"top 10 at-risk paid customers in CA"' in reply.text


def test_a_list_over_the_limit_lists_the_limit_and_says_so(sample, serving_url):
    paid = sample.customers[sample.customers["customer_id"] == "51"]
    scored = sample.churn_scores[sample.churn_scores["customer_id"] == "51"]
    ids = [str(n) for n in range(5000, 5060)]
    sample.customers = pd.concat(
        [sample.customers, paid.loc[paid.index.repeat(60)].assign(customer_id=ids)]
    )
    sample.churn_scores = pd.concat(
        [
            sample.churn_scores,
            scored.loc[scored.index.repeat(60)].assign(customer_id=ids),
        ]
    )
    sample.publish(serving_url)

    reply = chat("top 100 at-risk customers", serving_url)

    assert reply.text.startswith(
        "**The 50 customers most likely to cancel** (of 65 scored active ones; you "
        "asked for 100, and a list holds at most 50)"
    )
    assert len(reply.conversation.choices) == 50


def test_a_list_question_takes_no_stray_number_for_a_customer_id(
    serving_url, serving_path
):
    reply = chat("top 10 at-risk paid customers in CA' OR '39'='39", serving_url)
    about_39 = chat("top 3 reasons 39 is at risk", serving_url)

    assert reply.kind == "list"
    assert reply.conversation.choices == ("39", "51", "77")
    assert _count_customers(serving_path) == 9
    # A number that is no list's setting still names the customer.
    assert about_39.kind == "reasons" and "customer 39" in about_39.text


def test_a_list_with_no_match_says_there_is_none(serving_url):
    reply = chat("top 5 at-risk paid customers in TX", serving_url)

    assert reply.text == "There are no scored active paid customers in TX."


def test_cancellations_last_week_are_counted_over_the_seven_days_before_as_of(
    serving_url,
):
    reply = chat("how many customers cancelled last week", serving_url)

    # 200 on 2018-11-27 and 201 on 2018-11-24; 1042 left on 2018-10-31.
    assert reply.kind == "count"
    assert reply.text == (
        "**2** customers cancelled in the 7 days from 2018-11-24 to 2018-11-30."
    )


def test_cancellations_over_a_longer_period_and_in_total(serving_url):
    assert chat("how many cancelled in the last 60 days?", serving_url).text == (
        "**3** customers cancelled in the 60 days from 2018-10-02 to 2018-11-30."
    )
    assert chat("how many customers churned?", serving_url).text == (
        "**3** customers cancelled since the logs began on 2018-10-01, up to "
        "2018-12-01."
    )


def test_how_many_at_high_risk_counts_the_band(serving_url):
    reply = chat("how many paid customers are at high risk?", serving_url)

    assert reply.text.startswith(
        "**2** paid active customers are at high risk (a churn probability of 30%"
    )


def test_counts_of_one_are_in_the_singular(serving_url):
    # 53 (22%) is the free customer at medium risk, 52 the scored one in TX,
    # 200 the customer who cancelled in the last 5 days.
    assert chat("how many free customers are at medium risk?", serving_url).text == (
        "**1** free active customer is at medium risk (a churn probability of 10% "
        "or more and under 30%), as of 2018-12-01."
    )
    assert chat("how many customers in TX?", serving_url).text == (
        "**1** active customer in TX has a churn score."
    )
    assert chat("how many cancelled in the last 5 days?", serving_url).text == (
        "**1** customer cancelled in the 5 days from 2018-11-26 to 2018-11-30."
    )


def test_churn_rate_by_level_is_a_table_with_its_definition(serving_url):
    reply = chat("churn rate by level", serving_url)

    assert reply.kind == "churn-rate"
    # paid: 39, 1042, 51, 77, 201 (1042 and 201 cancelled); free: 100012, 52,
    # 53, 200 (200 cancelled). Predicted: mean of 0.73421, 0.41, 0.12 for paid.
    assert "| paid | 5 | 2 | 40.0% | 3 | 42.1% |" in reply.text
    assert "| free | 4 | 1 | 25.0% | 3 | 13.5% |" in reply.text
    assert "the share of customers seen in the logs" in reply.text


def test_churn_rate_overall_is_a_sentence_with_the_counts(serving_url):
    reply = chat("what is our churn rate?", serving_url)

    assert reply.text.startswith(
        "**Churn rate: 33.3%** (3 of 9 customers cancelled, from 2018-10-01 to "
        "2018-12-01)."
    )


def test_aggregates_follow_a_republished_database(sample, serving_url):
    assert "| paid | 5 | 2 |" in chat("churn rate by level", serving_url).text

    sample.customers = sample.customers[sample.customers["customer_id"] != "201"]
    sample.publish(serving_url)

    assert "| paid | 4 | 1 |" in chat("churn rate by level", serving_url).text


def test_a_last_name_of_two_words_is_found_and_a_wrong_one_is_not(sample, serving_url):
    sample.customers.loc[sample.customers["customer_id"] == "77", "last_name"] = (
        "De Angelis"
    )
    sample.publish(serving_url)

    found = chat("I have Ethan De Angelis on the line", serving_url)
    wrong = chat("Ethan Smith", serving_url)

    assert "Ethan De Angelis · customer 77" in found.text
    # Not every Ethan, nor every Smith: the two words are one name.
    assert wrong.kind == "name-not-found"


@pytest.mark.parametrize("message", ["Zoë Gilbert", "zoe gilbert", "ZOË GILBERT"])
def test_a_name_mis_encoded_in_the_logs_is_shown_repaired_and_found_without_accents(
    sample, serving_url, message
):
    # The logs carry some names as UTF-8 read as Latin-1: "ZoÃ«" for "Zoë".
    is_77 = sample.customers["customer_id"] == "77"
    sample.customers.loc[is_77, ["first_name", "last_name"]] = ["ZoÃ«", "Gilbert"]
    sample.publish(serving_url)

    reply = chat(message, serving_url)

    assert reply.kind == "card"
    assert "Zoë Gilbert · customer 77" in reply.text
    assert "Ã" not in reply.text


def test_a_database_of_an_older_version_is_named_as_such(serving_url, serving_path):
    with sqlite3.connect(serving_path) as connection:
        connection.execute("drop index ix_customers_name")
        connection.execute("drop index ix_customers_first_name")
        connection.execute("alter table customers drop column first_name_key")

    reply = chat("39", serving_url)

    assert reply.kind == "no-database"
    assert "older version" in reply.text and "`sparkify run` again" in reply.text
