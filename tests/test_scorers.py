"""Built-in scorers and the registry, without a pytest run."""

from __future__ import annotations

import pytest

from pytest_llmeval.errors import ScorerError
from pytest_llmeval.models import Case
from pytest_llmeval.scorers import Scorer, default_registry


def case(expected=None) -> Case:
    return Case(id="c1", inputs={"q": "?"}, expected=expected)


def score(name, output, expected=None, **options) -> float:
    [bound] = default_registry().bind([(name, options)] if options else [name])
    return bound(output, case(expected))


@pytest.mark.parametrize(
    "name, output, expected, options, want",
    [
        ("exact_match", "  Paris\n", "Paris", {}, 1.0),
        ("exact_match", "paris", "Paris", {}, 0.0),
        ("exact_match", "paris", "Paris", {"case_sensitive": False}, 1.0),
        ("contains", "It is PARIS.", "paris", {}, 1.0),
        ("contains", "It is Lyon.", "paris", {}, 0.0),
        ("contains", "Refunds take 14 days by card", ["14 days", "card"], {}, 1.0),
        ("contains", "Refunds take 14 days", ["14 days", "card"], {}, 0.0),
        ("regex", "order #12345", r"#\d{5}\b", {}, 1.0),
        ("regex", "order #12", None, {"pattern": r"#\d{5}"}, 0.0),
        ("json_valid", '{"a": 1}', None, {}, 1.0),
        ("json_valid", "{a: 1}", None, {}, 0.0),
        ("json_valid", {"a": [1, 2]}, None, {}, 1.0),
        ("json_valid", {"a": object()}, None, {}, 0.0),
        ("exact_match", 42, "42", {}, 1.0),
    ],
)
def test_builtin_scorers(name, output, expected, options, want):
    assert score(name, output, expected, **options) == want


def test_scorers_needing_expected_raise_instead_of_scoring_zero():
    with pytest.raises(ScorerError, match="needs the row's 'expected' field; case 'c1' has none"):
        score("contains", "anything")


def test_unknown_scorer_suggests_a_name_and_lists_the_known_ones():
    with pytest.raises(ScorerError, match=r"unknown scorer 'containz'; did you mean 'contains'\? Known scorers: contains, exact_match, json_valid, regex"):
        default_registry().bind(["containz"])


def test_bad_options_and_patterns_fail_at_bind_time():
    registry = default_registry()
    with pytest.raises(ScorerError, match="scorer 'regex': bad options"):
        registry.bind([("regex", {"patern": "x"})])
    with pytest.raises(ScorerError, match="invalid pattern"):
        registry.bind([("regex", {"pattern": "("})])
    with pytest.raises(ScorerError, match="bad scorer entry"):
        registry.bind([42])
    with pytest.raises(ScorerError, match="produced twice"):
        registry.bind(["regex", ("regex", {"pattern": "x"})])


def test_the_name_option_renames_the_metric():
    [a, b] = default_registry().bind(["regex", ("regex", {"pattern": "x", "name": "has_x"})])
    assert (a.metric, b.metric) == ("regex", "has_x")


def test_scores_outside_unit_interval_and_exceptions_are_scorer_errors():
    registry = default_registry()
    registry.add(Scorer("bad_range", lambda output, case: 1.5))
    registry.add(Scorer("broken", lambda output, case: 1 / 0))
    registry.add(Scorer("flag", lambda output, case: True))
    bad, broken, flag = registry.bind(["bad_range", "broken", "flag"])
    with pytest.raises(ScorerError, match=r"returned 1.5; a score must be a number in \[0, 1\]"):
        bad("x", case())
    with pytest.raises(ScorerError, match="scorer 'broken' raised ZeroDivisionError"):
        broken("x", case())
    assert flag("x", case()) == 1.0
