"""Built-in scorers and the registry, without a pytest run.

Agreement of the similarity scorers with their reference implementations is in
test_scorer_references.py.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pytest_llmeval.errors import ScorerError
from pytest_llmeval.models import Case
from pytest_llmeval.scorers import Scorer, builtin_scorers, default_registry

BUILTINS = {
    "bleu": False,
    "contains": True,
    "context_overlap": False,
    "exact_match": True,
    "json_schema": True,
    "json_valid": True,
    "levenshtein": False,
    "not_contains": True,
    "numeric": True,
    "question_overlap": False,
    "regex": True,
    "rouge_l": False,
    "token_f1": False,
    "judge:correctness": False,
    "judge:faithfulness": False,
    "judge:relevance": False,
}

SCHEMA = {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "integer"}}}


def case(expected=None, *, context=None, inputs=None, metadata=None) -> Case:
    return Case(id="c1", inputs={"q": "?"} if inputs is None else inputs, expected=expected, context=context, metadata=metadata or {})


def score(name, output, expected=None, *, context=None, inputs=None, metadata=None, **options) -> float:
    [bound] = default_registry().bind([(name, options)] if options else [name])
    return bound(output, case(expected, context=context, inputs=inputs, metadata=metadata))


def test_default_registry_holds_every_builtin_with_its_kind():
    registry = default_registry()
    assert registry.names() == sorted(BUILTINS)
    assert {s.name: s.binary for s in builtin_scorers()} == BUILTINS
    for name, binary in BUILTINS.items():
        assert registry.get(name).binary is binary


def test_importing_the_scorers_loads_no_heavy_library():
    code = (
        "import sys; import pytest_llmeval.scorers as s; s.default_registry(); "
        "print(sorted(m for m in ('sacrebleu', 'rapidfuzz', 'jsonschema', 'numpy', 'rouge_score') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "name, output, expected, options, want",
    [
        # exact_match
        ("exact_match", "  Paris\n", "Paris", {}, 1.0),
        ("exact_match", "paris", "Paris", {}, 0.0),
        ("exact_match", "paris", "Paris", {"case_sensitive": False}, 1.0),
        ("exact_match", 42, "42", {}, 1.0),
        ("exact_match", "New  York\tCity", "New York City", {}, 0.0),
        ("exact_match", "New  York\tCity", "New York City", {"normalize_whitespace": True}, 1.0),
        ("exact_match", "Paris.", "Paris", {}, 0.0),
        ("exact_match", "“Paris!”", "Paris", {"ignore_punctuation": True}, 1.0),
        ("exact_match", " PARIS ! ", "paris", {"ignore_punctuation": True, "case_sensitive": False}, 1.0),
        ("exact_match", "Lyon", ["Paris", "Lyon"], {}, 1.0),
        ("exact_match", "Nice", ["Paris", "Lyon"], {}, 0.0),
        # contains
        ("contains", "It is PARIS.", "paris", {}, 1.0),
        ("contains", "It is Lyon.", "paris", {}, 0.0),
        ("contains", "It is PARIS.", "paris", {"case_sensitive": True}, 0.0),
        ("contains", "Refunds take 14 days by card", ["14 days", "card"], {}, 1.0),
        ("contains", "Refunds take 14 days", ["14 days", "card"], {}, 0.0),
        ("contains", "Refunds take 14 days", ["14 days", "card"], {"require": "any"}, 1.0),
        # not_contains
        ("not_contains", "As an AI language model, I cannot", None, {"forbidden": ["as an ai"]}, 0.0),
        ("not_contains", "Refunds take 14 days.", None, {"forbidden": ["as an ai", "I cannot"]}, 1.0),
        ("not_contains", "As an AI", None, {"forbidden": "as an ai", "case_sensitive": True}, 1.0),
        ("not_contains", "call 555-0100 now", ["555-0100", "@"], {}, 0.0),
        ("not_contains", "no phone here", "555-0100", {}, 1.0),
        # regex
        ("regex", "order #12345", r"#\d{5}\b", {}, 1.0),
        ("regex", "order #12", None, {"pattern": r"#\d{5}"}, 0.0),
        ("regex", "ORDER 1", None, {"pattern": "order"}, 0.0),
        ("regex", "ORDER 1", None, {"pattern": "order", "ignore_case": True}, 1.0),
        ("regex", "ORDER 1", "order", {"ignore_case": True}, 1.0),
        ("regex", " yes\n", None, {"pattern": "yes|no", "full_match": True}, 1.0),
        ("regex", "yes and no", None, {"pattern": "yes|no", "full_match": True}, 0.0),
        # numeric
        ("numeric", "The answer is 42.", 42, {}, 1.0),
        ("numeric", "The answer is 42.", "42", {}, 1.0),
        ("numeric", "It costs $1,234.50 in total", "1234.5", {}, 1.0),
        ("numeric", "about -3.5e2 units", -350, {}, 1.0),
        ("numeric", "COVID-19 cases: 7", 19, {}, 1.0),
        ("numeric", "v2 ships 3 fixes", 3, {}, 1.0),
        ("numeric", "roughly .5", 0.5, {}, 1.0),
        ("numeric", "3.3", 3, {}, 0.0),
        ("numeric", "3.3", 3, {"abs_tol": 0.5}, 1.0),
        ("numeric", "105", 100, {"rel_tol": 0.05}, 1.0),
        ("numeric", "106", 100, {"rel_tol": 0.05}, 0.0),
        ("numeric", "no number here", 3, {}, 0.0),
        ("numeric", 7, "7 days", {}, 1.0),
        ("numeric", "14", [7, 14], {}, 1.0),
        ("numeric", "1,2345", 1, {}, 1.0),
        # json_valid
        ("json_valid", '{"a": 1}', None, {}, 1.0),
        ("json_valid", "{a: 1}", None, {}, 0.0),
        ("json_valid", {"a": [1, 2]}, None, {}, 1.0),
        ("json_valid", {"a": object()}, None, {}, 0.0),
        ("json_valid", '```json\n{"a": 1}\n```', None, {}, 0.0),
        ("json_valid", '```json\n{"a": 1}\n```', None, {"strip_code_fence": True}, 1.0),
        ("json_valid", '```\n[1, 2]\n```\n', None, {"strip_code_fence": True}, 1.0),
        # json_schema (schema from the option)
        ("json_schema", '{"order_id": 12345}', None, {"schema": SCHEMA}, 1.0),
        ("json_schema", '{"order_id": "12345"}', None, {"schema": SCHEMA}, 0.0),
        ("json_schema", "{}", None, {"schema": SCHEMA}, 0.0),
        ("json_schema", "not json", None, {"schema": SCHEMA}, 0.0),
        ("json_schema", {"order_id": 1}, None, {"schema": SCHEMA}, 1.0),
        ("json_schema", ("a", "b"), None, {"schema": {"type": "array"}}, 1.0),
        ("json_schema", '```json\n{"order_id": 1}\n```', None, {"schema": SCHEMA, "strip_code_fence": True}, 1.0),
        # token_f1
        ("token_f1", "The Eiffel Tower!", "eiffel tower", {}, 1.0),
        ("token_f1", "in Paris, France", "Paris", {}, pytest.approx(0.5)),
        ("token_f1", "Paris", ["Lyon", "the city of Paris"], {}, pytest.approx(0.5)),
        ("token_f1", "", "Paris", {}, 0.0),
        ("token_f1", "the", "a", {}, 0.0),  # SQuAD v1.1: nothing left after normalising scores 0
        # rouge_l
        ("rouge_l", "the cat sat on the mat", "the cat is on the mat", {}, pytest.approx(5 / 6)),
        ("rouge_l", "The CAT, sat!", "the cat sat", {}, 1.0),
        ("rouge_l", "mat the on", "the cat on the mat", {}, pytest.approx(2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5))),
        ("rouge_l", "", "the cat", {}, 0.0),
        ("rouge_l", "dog", ["the cat", "a dog"], {}, pytest.approx(2 / 3)),
        # bleu
        ("bleu", "the cat sat on the mat", "the cat sat on the mat", {}, 1.0),
        ("bleu", "the cat sat on the mat", "the cat is on the mat", {}, pytest.approx(0.37991784282579627)),
        ("bleu", "the cat sat on the mat", ["a dog", "the cat sat on the mat"], {}, 1.0),
        ("bleu", "THE CAT SAT ON THE MAT", "the cat sat on the mat", {"lowercase": True}, 1.0),
        ("bleu", "", "the cat", {}, 0.0),
        # levenshtein
        ("levenshtein", "kitten", "sitting", {}, pytest.approx(1 - 3 / 7)),
        ("levenshtein", "Paris", "paris", {}, pytest.approx(0.8)),
        ("levenshtein", "Paris", "paris", {"case_sensitive": False}, 1.0),
        ("levenshtein", " a  b ", "a b", {"normalize_whitespace": True}, 1.0),
        ("levenshtein", "", "", {}, 1.0),
        ("levenshtein", "abc", ["xyz", "abd"], {}, pytest.approx(2 / 3)),
    ],
)
def test_builtin_scorers(name, output, expected, options, want):
    assert score(name, output, expected, **options) == want


def test_binary_scorers_return_exactly_zero_or_one():
    samples = ["", "Paris", "42", '{"order_id": 1}', "As an AI, 3.5"]
    for name, expected, options in [
        ("exact_match", "Paris", {}),
        ("contains", "paris", {}),
        ("not_contains", None, {"forbidden": ["ai"]}),
        ("regex", r"\d", {}),
        ("numeric", 42, {}),
        ("json_valid", None, {}),
        ("json_schema", None, {"schema": SCHEMA}),
    ]:
        assert {score(name, output, expected, **options) for output in samples} <= {0.0, 1.0}, name


def test_json_schema_reads_the_rows_metadata_schema():
    assert score("json_schema", '{"order_id": 7}', metadata={"schema": SCHEMA}) == 1.0
    assert score("json_schema", '{"order_id": null}', metadata={"schema": SCHEMA}) == 0.0
    # the marker's option wins over the row
    assert score("json_schema", "[]", metadata={"schema": SCHEMA}, schema={"type": "array"}) == 1.0


CONTEXT = ["Card refunds take 14 days.", "Bank transfers are refunded within 5 business days."]


@pytest.mark.parametrize(
    "output, options, want",
    [
        ("Card refunds take 14 days.", {}, 1.0),
        ("Refunds to a card take 14 days.", {}, 1.0),
        ("Card refunds take 30 days.", {}, pytest.approx(4 / 5)),  # 30 is not in the context
        ("Card refunds do not take 14 days.", {}, 1.0),  # negation is invisible: a documented limit
        ("It takes two weeks.", {}, 0.0),  # a paraphrase scores low: a documented limit
        ("", {}, 1.0),  # no content words: nothing unsupported
        ("Bank transfer refunds", {}, pytest.approx(2 / 3)),  # 'transfer' vs 'transfers'
        ("Bank transfer refunds", {"stem_plurals": True}, 1.0),
        ("Card refunds take 14 days, Sir.", {"extra_stopwords": ["sir"]}, 1.0),
    ],
)
def test_context_overlap(output, options, want):
    assert score("context_overlap", output, context=CONTEXT, **options) == want


def test_context_overlap_takes_a_string_context():
    assert score("context_overlap", "Paris is the capital", context="The capital of France is Paris.") == 1.0


@pytest.mark.parametrize(
    "output, options, want",
    [
        ("Card refunds take 14 days.", {}, 0.0),  # 'refund window cards' vs 'card refunds'
        ("Card refunds take 14 days.", {"stem_plurals": True}, pytest.approx(2 / 3)),
        ("The refund window for cards is 14 days.", {}, 1.0),
        ("I like trains.", {}, 0.0),
    ],
)
def test_question_overlap(output, options, want):
    inputs = {"question": "What is the refund window for cards?"}
    assert score("question_overlap", output, inputs=inputs, **options) == want


def test_question_overlap_reads_another_input_and_scores_a_question_without_content_words_1():
    assert score("question_overlap", "Paris", inputs={"prompt": "Capital of France?"}, input_key="prompt") == pytest.approx(0.0)
    assert score("question_overlap", "capital france", inputs={"prompt": "Capital of France?"}, input_key="prompt") == 1.0
    assert score("question_overlap", "anything", inputs={"question": "What is it?"}) == 1.0


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        (name, {}, f"scorer '{name}' needs the row's 'expected' field; case 'c1' has none")
        for name in ["exact_match", "contains", "regex", "numeric", "token_f1", "rouge_l", "bleu", "levenshtein"]
    ]
    + [
        ("not_contains", {}, "scorer 'not_contains' needs the option 'forbidden' or the row's 'expected' field; case 'c1' has none"),
        ("json_schema", {}, r"scorer 'json_schema' needs the option 'schema' or the row's metadata\['schema'\]; case 'c1' has neither"),
        ("context_overlap", {}, "scorer 'context_overlap' needs the row's 'context' field; case 'c1' has none"),
        ("context_overlap", {"context": ["", " "]}, "scorer 'context_overlap' needs the row's 'context' field; case 'c1' has none"),
        ("context_overlap", {"context": {"doc": "x"}}, "case 'c1' has a 'context' of type dict; it must be a string or a list of strings"),
        ("question_overlap", {}, r"scorer 'question_overlap' needs the question in inputs\['question'\] .*; case 'c1' has inputs: q"),
        ("numeric", {"expected": "many"}, "scorer 'numeric': case 'c1' has no number in 'expected'"),
        ("numeric", {"expected": True}, "scorer 'numeric': case 'c1' has a boolean as 'expected'"),
        ("token_f1", {"expected": []}, "scorer 'token_f1': case 'c1' has an empty list as 'expected'"),
        ("json_schema", {"metadata": {"schema": {"type": "nope"}}}, r"case 'c1': metadata\['schema'\] is not a valid JSON Schema"),
    ],
)
def test_missing_or_bad_row_fields_raise_naming_scorer_and_case(name, kwargs, message):
    with pytest.raises(ScorerError, match=message):
        score(name, "anything", **kwargs)


def test_unknown_scorer_suggests_a_name_and_lists_the_known_ones():
    known = ", ".join(sorted(BUILTINS))
    with pytest.raises(ScorerError, match=re.escape(f"unknown scorer 'containz'; did you mean 'contains'? Known scorers: {known}")):
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


@pytest.mark.parametrize(
    "entry, message",
    [
        (("exact_match", {"casesensitive": False}), "scorer 'exact_match': bad options \\['casesensitive'\\]"),
        (("exact_match", {"case_sensitive": "no"}), "scorer 'exact_match': option 'case_sensitive' must be True or False, got 'no'"),
        (("contains", {"require": "most"}), "scorer 'contains': option 'require' must be one of 'all', 'any', got 'most'"),
        (("not_contains", {"forbidden": 3}), "scorer 'not_contains': option 'forbidden' must be a string or a list of strings"),
        (("not_contains", {"forbidden": [""]}), "scorer 'not_contains': option 'forbidden' holds no non-empty string"),
        (("numeric", {"abs_tol": -1}), "scorer 'numeric': option 'abs_tol' must be a number >= 0, got -1"),
        (("numeric", {"tolerance": 1}), "scorer 'numeric': bad options \\['tolerance'\\]"),
        (("json_schema", {"schema": {"type": "nope"}}), "scorer 'json_schema': option 'schema' is not a valid JSON Schema"),
        (("json_schema", {"schema": "x.json"}), "scorer 'json_schema': option 'schema' must be a JSON Schema \\(a mapping\\)"),
        (("token_f1", {"lowercase": True}), "scorer 'token_f1': bad options \\['lowercase'\\]"),
        (("rouge_l", {"use_stemmer": True}), "scorer 'rouge_l': bad options \\['use_stemmer'\\]"),
        (("bleu", {"tokenize": "nope"}), "scorer 'bleu': sacrebleu rejected the options"),
        (("bleu", {"smooth_method": "laplace"}), "scorer 'bleu': option 'smooth_method' must be one of"),
        (("levenshtein", {"case_sensitive": 0}), "scorer 'levenshtein': option 'case_sensitive' must be True or False"),
        (("question_overlap", {"input_key": ""}), "scorer 'question_overlap': option 'input_key' must be the name of an input"),
        (("context_overlap", {"extra_stopwords": [1]}), "scorer 'context_overlap': option 'extra_stopwords' must be a string or a list"),
    ],
)
def test_bad_option_values_fail_at_bind_time(entry, message):
    with pytest.raises(ScorerError, match=message):
        default_registry().bind([entry])


def test_a_prepare_options_hook_that_crashes_becomes_a_scorer_error():
    def fn(output, case, *, x=1):
        return 1.0

    def prepare(x=1):
        raise ValueError("x must be odd")

    fn.prepare_options = prepare
    registry = default_registry()
    registry.add(Scorer("odd", fn))
    with pytest.raises(ScorerError, match=r"scorer 'odd': bad options \['x'\]: ValueError: x must be odd"):
        registry.bind([("odd", {"x": 2})])


def test_prepared_options_are_compiled_once():
    [rx, js] = default_registry().bind([("regex", {"pattern": "a+", "ignore_case": True}), ("json_schema", {"schema": SCHEMA})])
    assert isinstance(rx.options["pattern"], re.Pattern) and rx.options["pattern"].flags & re.IGNORECASE
    assert js.options["schema"].schema == SCHEMA
    assert rx("AAA", case()) == 1.0


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


def test_continuous_scorers_stay_in_the_unit_interval_on_odd_outputs():
    odd = ["", " ", "...", None, 0, b"bytes \xff", ["a", "list"], {"a": 1}, "ünïcödé テキスト", "a " * 300]
    for name in ["token_f1", "rouge_l", "bleu", "levenshtein"]:
        for output in odd:
            assert 0.0 <= score(name, output, "a reference answer") <= 1.0, (name, output)
    for output in odd:
        assert 0.0 <= score("context_overlap", output, context="a context") <= 1.0
        assert 0.0 <= score("question_overlap", output, inputs={"question": "a question"}) <= 1.0
