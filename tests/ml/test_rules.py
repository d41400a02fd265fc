"""Retention suggestions: the rules file is read, checked and applied in order."""

from __future__ import annotations

import pytest

from ml import DEFAULT_RULES, Driver, RulesError, load_rules


def _driver(column: str) -> Driver:
    return Driver(column, 1.0, "")


def test_the_shipped_rules_file_loads():
    rules = load_rules(DEFAULT_RULES)

    assert len(rules.rules) >= 5 and rules.default


def test_the_strongest_driver_with_a_rule_gives_the_suggestion():
    rules = load_rules(DEFAULT_RULES)
    row = {"is_paid": 0, "tenure_days": 300}

    name, action = rules.suggest(
        [_driver("state"), _driver("count_errors_28d"), _driver("count_adverts_28d")],
        row,
    )

    assert name == "repeated errors"
    assert "technical-support" in action


def test_a_rule_whose_condition_fails_is_passed_over():
    rules = load_rules(DEFAULT_RULES)

    free = rules.suggest([_driver("count_adverts_28d")], {"is_paid": 0})
    paid = rules.suggest([_driver("count_adverts_28d")], {"is_paid": 1})

    assert free[0] == "adverts on the free tier"
    assert paid == ("default", rules.default)


def test_an_edited_rules_file_changes_the_suggestion(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(
        "rules:\n"
        "  - name: errors\n"
        "    drivers: [count_errors_28d]\n"
        "    action: Send the error report to engineering.\n"
        "default: Say thank you.\n"
    )

    rules = load_rules(path)

    assert rules.suggest([_driver("count_errors_28d")], {}) == (
        "errors",
        "Send the error report to engineering.",
    )
    assert rules.suggest([], {}) == ("default", "Say thank you.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [\n", "not valid YAML at line"),
        ("default: Hi.\n", "needs a 'rules:' list"),
        ("rules: []\n", "'default' must be a sentence"),
        (
            "rules:\n  - name: x\n    drivers: [count_errrors_28d]\n    action: y\n"
            "default: z\n",
            "rule 1 ('x'): unknown driver(s) ['count_errrors_28d']",
        ),
        (
            "rules:\n  - name: x\n    drivers: [is_paid]\n    only_if: is_paid = 0\n"
            "    action: y\ndefault: z\n",
            "only_if 'is_paid = 0' should read",
        ),
    ],
)
def test_a_broken_rules_file_is_named_with_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "rules.yml"
    path.write_text(text)

    with pytest.raises(RulesError, match="rules file .*rules.yml") as raised:
        load_rules(path)

    assert message in str(raised.value)


def test_a_missing_rules_file_says_it_cannot_be_read(tmp_path):
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(tmp_path / "nope.yml")
