"""The few AWS evaluation rules the template tests need and moto does not implement: CloudWatch
metric math, EventBridge pattern matching and IAM Allow statements, each for the subset the
template uses, written from AWS's documentation of it."""

from __future__ import annotations

import fnmatch
import re


def metric_math(expression: str, **values: float | None) -> float:
    """Evaluates a CloudWatch metric-math expression of IF, FILL, AND, OR, comparisons and
    arithmetic; a metric given as None has no data point (what FILL replaces)."""

    def fill(value, default):
        return default if value is None else value

    def if_(condition, when_true, when_false):
        return when_true if condition else when_false

    known = {"IF", "FILL", "AND", "OR"}
    unknown = set(re.findall(r"[A-Z]{2,}", expression)) - known
    assert not unknown, f"metric math this evaluator does not know: {unknown}"
    python = re.sub(r"\bAND\b", " and ", re.sub(r"\bOR\b", " or ", expression))
    python = python.replace("IF(", "if_(").replace("FILL(", "fill(")
    return eval(python, {"__builtins__": {}}, {"if_": if_, "fill": fill, **values})  # noqa: S307


def event_matches(pattern: dict, event: dict) -> bool:
    """EventBridge: every field of the pattern matches; a list in the pattern is alternatives;
    an array in the event matches when any element does; `$or` is alternatives of sub-patterns;
    `anything-but` matches a present value other than the given ones."""
    for key, expected in pattern.items():
        if key == "$or":
            if not any(event_matches(alternative, event) for alternative in expected):
                return False
            continue
        value = event.get(key) if isinstance(event, dict) else None
        if isinstance(expected, dict):
            items = value if isinstance(value, list) else [value]
            if not any(isinstance(item, dict) and event_matches(expected, item) for item in items):
                return False
        elif not _value_matches(expected, value):
            return False
    return True


def _value_matches(alternatives: list, value) -> bool:
    values = value if isinstance(value, list) else [value]
    for alternative in alternatives:
        for item in values:
            if isinstance(alternative, dict) and set(alternative) == {"anything-but"}:
                excluded = alternative["anything-but"]
                excluded = excluded if isinstance(excluded, list) else [excluded]
                if item is not None and item not in excluded:
                    return True
            elif not isinstance(alternative, dict) and item == alternative:
                return True
    return False


def policy_allows(document: dict, action: str, resource: str) -> bool:
    """Whether an Allow statement names the action (exactly) on a resource pattern matching
    the ARN (IAM's * and ? wildcards). The template's policies have no Deny or conditions."""
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if statement["Effect"] == "Allow" and action in actions:
            if any(fnmatch.fnmatchcase(resource, pattern) for pattern in resources):
                return True
    return False
