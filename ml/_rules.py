"""Retention suggestions from an editable rules file keyed on a customer's drivers."""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ml._explain import KNOWN_COLUMNS, Driver

__all__ = [
    "DEFAULT_RULES",
    "RULES_ENV",
    "RetentionRules",
    "Rule",
    "RulesError",
    "load_rules",
]

DEFAULT_RULES = Path(__file__).with_name("retention_rules.yml")
RULES_ENV = "SPARKIFY_RETENTION_RULES"
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*(\w+)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")


class RulesError(ValueError):
    """The rules file is missing, unreadable or has a broken entry."""


@dataclass(frozen=True)
class Rule:
    """Drivers it answers, an optional condition on a feature, the suggestion."""

    name: str
    drivers: frozenset[str]
    action: str
    only_if: tuple[str, str, float] | None = None

    def applies(self, driver: str, row: Mapping[str, Any]) -> bool:
        if driver not in self.drivers:
            return False
        if self.only_if is None:
            return True
        column, op, number = self.only_if
        try:
            value = float(row[column])
        except (KeyError, TypeError, ValueError):
            return False
        return _OPERATORS[op](value, number)


@dataclass(frozen=True)
class RetentionRules:
    """The rules of one file, in order, and the default suggestion."""

    path: Path
    rules: tuple[Rule, ...]
    default: str

    def suggest(
        self, drivers: Sequence[Driver], row: Mapping[str, Any]
    ) -> tuple[str, str]:
        """(rule name, action) for a customer's drivers, strongest first."""
        for driver in drivers:
            for rule in self.rules:
                if rule.applies(driver.column, row):
                    return rule.name, rule.action
        return "default", self.default


def load_rules(path: Path | None = None) -> RetentionRules:
    """Read and check a rules file.

    ``path`` defaults to ``SPARKIFY_RETENTION_RULES``, else the shipped
    ``ml/retention_rules.yml``. Raises ``RulesError`` naming the file and
    the entry that is wrong.
    """
    path = Path(path or os.environ.get(RULES_ENV) or DEFAULT_RULES)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(
            f"rules file {path}: cannot be read ({exc.strerror})"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RulesError(f"rules file {path}: not valid YAML{where}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RulesError(
            f"rules file {path}: needs a 'rules:' list (see {DEFAULT_RULES})"
        )
    default = document.get("default")
    if not isinstance(default, str) or not default.strip():
        raise RulesError(f"rules file {path}: 'default' must be a sentence")
    unknown_keys = sorted(set(document) - {"rules", "default"})
    if unknown_keys:
        raise RulesError(
            f"rules file {path}: unknown top-level key(s) {unknown_keys}; only "
            "'rules' and 'default' are read"
        )
    rules = tuple(
        _rule(path, number, entry)
        for number, entry in enumerate(document["rules"], start=1)
    )
    return RetentionRules(path, rules, default.strip())


def _rule(path: Path, number: int, entry: object) -> Rule:
    where = f"rules file {path}: rule {number}"
    if not isinstance(entry, dict):
        raise RulesError(f"{where} must be a mapping with name, drivers and action")
    if isinstance(entry.get("name"), str):
        where += f" ({entry['name']!r})"
    unknown = sorted(set(entry) - {"name", "drivers", "only_if", "action"})
    if unknown:
        raise RulesError(
            f"{where}: unknown key(s) {unknown}; use name, drivers, only_if, action"
        )
    for key in ("name", "action"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise RulesError(f"{where}: '{key}' must be a non-empty text")
    drivers = entry.get("drivers")
    if not isinstance(drivers, list) or not drivers:
        raise RulesError(f"{where}: 'drivers' must be a list of feature columns")
    bad = [d for d in drivers if d not in KNOWN_COLUMNS]
    if bad:
        raise RulesError(
            f"{where}: unknown driver(s) {bad}; drivers are feature columns of "
            "customer_features, e.g. count_errors_28d or adverts_per_song_28d"
        )
    only_if = None
    if entry.get("only_if") is not None:
        match = _CONDITION.match(str(entry["only_if"]))
        if not match or match[1] not in KNOWN_COLUMNS:
            raise RulesError(
                f"{where}: only_if {entry['only_if']!r} should read "
                "'<feature column> <op> <number>', e.g. 'is_paid == 0'"
            )
        only_if = (match[1], match[2], float(match[3]))
    return Rule(
        entry["name"].strip(), frozenset(drivers), entry["action"].strip(), only_if
    )
