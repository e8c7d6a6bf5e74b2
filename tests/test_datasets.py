"""Unit tests for pytest_llmeval.core.datasets.load_dataset and models.case_content_hash.

Plain Python, no pytester: every dataset is written byte for byte into tmp_path, so line
numbers in the assertions can be read off the literals in each test.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pytest_llmeval.core.datasets import Dataset, load_dataset
from pytest_llmeval.errors import DatasetError, LLMEvalError
from pytest_llmeval.models import Case, case_content_hash


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """Write exactly these bytes (no newline translation) and return the path."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def jsonl(*rows: object) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def load_error(path: Path, name: str | None = None) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        load_dataset(path, name)
    return info.value


GOOD = {
    "id": "refund-1",
    "inputs": {"question": "Can I get a refund?", "lang": "en"},
    "expected": "30 days",
    "context": "Refunds are accepted within 30 days.",
    "tags": ["billing", "refund"],
    "must_pass": True,
    "metadata": {"source": "ticket-42", "difficulty": 2},
}


# --------------------------------------------------------------------------- JSONL


def test_jsonl_maps_every_field_onto_case(tmp_path):
    path = write(tmp_path, "support.jsonl", jsonl(GOOD))
    dataset = load_dataset(path)

    assert isinstance(dataset, Dataset)
    assert dataset.path == path
    assert dataset.name == str(path)
    assert len(dataset.cases) == 1
    case = dataset.cases[0]
    assert case == Case(
        id="refund-1",
        inputs={"question": "Can I get a refund?", "lang": "en"},
        expected="30 days",
        context="Refunds are accepted within 30 days.",
        tags=("billing", "refund"),
        must_pass=True,
        metadata={"source": "ticket-42", "difficulty": 2},
        line=1,
        repeat=0,
    )
    assert isinstance(case.tags, tuple)


def test_jsonl_optional_fields_default(tmp_path):
    path = write(tmp_path, "d.jsonl", jsonl({"id": "a", "inputs": {}}))
    (case,) = load_dataset(path).cases
    assert case.id == "a"
    assert case.inputs == {}
    assert case.expected is None
    assert case.context is None
    assert case.tags == ()
    assert case.must_pass is False
    assert case.metadata == {}
    assert case.line == 1


def test_jsonl_expected_answer_is_an_alias_of_expected(tmp_path):
    path = write(tmp_path, "d.jsonl", jsonl({"id": "a", "inputs": {"q": "x"}, "expected_answer": ["Paris", "France"]}))
    (case,) = load_dataset(path).cases
    assert case.expected == ["Paris", "France"]


def test_jsonl_expected_can_be_any_json_value(tmp_path):
    rows = [
        {"id": "obj", "inputs": {}, "expected": {"status": "ok", "n": 3}},
        {"id": "num", "inputs": {}, "expected": 0},
        {"id": "false", "inputs": {}, "expected": False},
    ]
    cases = load_dataset(write(tmp_path, "d.jsonl", jsonl(*rows))).cases
    assert [c.expected for c in cases] == [{"status": "ok", "n": 3}, 0, False]


def test_jsonl_context_as_string_or_list(tmp_path):
    rows = [
        {"id": "s", "inputs": {}, "context": "one passage"},
        {"id": "l", "inputs": {}, "context": ["first passage", "second passage"]},
        {"id": "e", "inputs": {}, "context": []},
    ]
    cases = load_dataset(write(tmp_path, "d.jsonl", jsonl(*rows))).cases
    assert [c.context for c in cases] == ["one passage", ["first passage", "second passage"], []]


def test_jsonl_integer_id_becomes_string(tmp_path):
    (case,) = load_dataset(write(tmp_path, "d.jsonl", jsonl({"id": 7, "inputs": {}}))).cases
    assert case.id == "7"


def test_jsonl_line_numbers_count_blank_lines(tmp_path):
    text = (
        '{"id": "a", "inputs": {}}\n'
        "\n"
        "   \n"
        '{"id": "b", "inputs": {}}\n'
        '{"id": "c", "inputs": {}}\n'
        "\n"
    )
    cases = load_dataset(write(tmp_path, "d.jsonl", text)).cases
    assert [(c.id, c.line) for c in cases] == [("a", 1), ("b", 4), ("c", 5)]


def test_jsonl_crlf_bom_and_no_trailing_newline(tmp_path):
    text = '\ufeff{"id": "a", "inputs": {"q": "x"}}\r\n\r\n{"id": "b", "inputs": {"q": "y"}}'
    cases = load_dataset(write(tmp_path, "d.jsonl", text)).cases
    assert [(c.id, c.line, dict(c.inputs)) for c in cases] == [("a", 1, {"q": "x"}), ("b", 3, {"q": "y"})]


def test_jsonl_non_ascii_text_is_kept(tmp_path):
    row = {"id": "café-1", "inputs": {"question": "Où est ma commande ? 注文"}, "expected": "Ärger"}
    text = json.dumps(row, ensure_ascii=False) + "\n"
    (case,) = load_dataset(write(tmp_path, "d.jsonl", text)).cases
    assert case.id == "café-1"
    assert case.inputs == {"question": "Où est ma commande ? 注文"}
    assert case.expected == "Ärger"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_jsonl_unicode_line_separator_inside_a_string_is_not_a_line_break(tmp_path, separator):
    text = (
        json.dumps({"id": "a", "inputs": {"q": f"first{separator}second"}}, ensure_ascii=False)
        + "\n"
        + json.dumps({"id": "b", "inputs": {"q": "plain"}})
        + "\n"
    )
    cases = load_dataset(write(tmp_path, "d.jsonl", text)).cases
    assert [(c.id, c.line) for c in cases] == [("a", 1), ("b", 2)]
    assert cases[0].inputs == {"q": f"first{separator}second"}


def test_name_argument_is_used_for_display(tmp_path):
    path = write(tmp_path, "deep/dir/d.jsonl", jsonl({"id": "a", "inputs": {}}))
    dataset = load_dataset(path, "evals/d.jsonl")
    assert dataset.name == "evals/d.jsonl"
    assert dataset.path == path


def test_path_may_be_a_string(tmp_path):
    path = write(tmp_path, "d.jsonl", jsonl({"id": "a", "inputs": {}}))
    dataset = load_dataset(str(path))
    assert dataset.path == path
    assert [c.id for c in dataset.cases] == ["a"]


# --------------------------------------------------------------------------- YAML


YAML_LIST = """\
# support dataset
- id: refund-1
  inputs:
    question: Can I get a refund?
    lang: en
  expected: 30 days
  context: Refunds are accepted within 30 days.
  tags: [billing, refund]
  must_pass: true
  metadata:
    source: ticket-42
    difficulty: 2

- id: 7
  inputs: {question: "Where is my order?"}
  expected_answer: tracking
  context:
    - Orders ship in 2 days.
    - Tracking links are emailed.
"""


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_yaml_list(tmp_path, suffix):
    dataset = load_dataset(write(tmp_path, "support" + suffix, YAML_LIST))
    first, second = dataset.cases
    assert first == Case(
        id="refund-1",
        inputs={"question": "Can I get a refund?", "lang": "en"},
        expected="30 days",
        context="Refunds are accepted within 30 days.",
        tags=("billing", "refund"),
        must_pass=True,
        metadata={"source": "ticket-42", "difficulty": 2},
        line=2,
    )
    assert second == Case(
        id="7",
        inputs={"question": "Where is my order?"},
        expected="tracking",
        context=["Orders ship in 2 days.", "Tracking links are emailed."],
        line=14,
    )


def test_yaml_mapping_with_cases(tmp_path):
    text = """\
version: 1
description: rows live under cases
cases:
  - id: a
    inputs: {q: one}
  - id: b
    inputs: {q: two}
    expected: 2
"""
    cases = load_dataset(write(tmp_path, "d.yaml", text)).cases
    assert [(c.id, c.line, dict(c.inputs), c.expected) for c in cases] == [
        ("a", 4, {"q": "one"}, None),
        ("b", 6, {"q": "two"}, 2),
    ]


def test_yaml_flow_rows_on_their_own_lines(tmp_path):
    text = "[\n  {id: a, inputs: {}},\n\n  {id: b, inputs: {}},\n]\n"
    cases = load_dataset(write(tmp_path, "d.yaml", text)).cases
    assert [(c.id, c.line) for c in cases] == [("a", 2), ("b", 4)]


# --------------------------------------------------------------------------- CSV


def test_csv_columns_map_onto_case(tmp_path):
    text = (
        "id,question,inputs.lang,expected,context,tags,must_pass,metadata.source,metadata.owner\n"
        "refund-1,Can I get a refund?,en,30 days,Refunds within 30 days.,billing; refund,true,ticket-42,alice\n"
    )
    (case,) = load_dataset(write(tmp_path, "d.csv", text)).cases
    assert case == Case(
        id="refund-1",
        inputs={"question": "Can I get a refund?", "lang": "en"},
        expected="30 days",
        context="Refunds within 30 days.",
        tags=("billing", "refund"),
        must_pass=True,
        metadata={"source": "ticket-42", "owner": "alice"},
        line=2,
    )


def test_csv_empty_cells_mean_absent(tmp_path):
    text = "id,question,expected,context,tags,must_pass\na,hi,,,,\n"
    (case,) = load_dataset(write(tmp_path, "d.csv", text)).cases
    assert case.inputs == {"question": "hi"}
    assert case.expected is None
    assert case.context is None
    assert case.tags == ()
    assert case.must_pass is False
    assert case.metadata == {}


def test_csv_expected_answer_column_and_header_whitespace(tmp_path):
    text = " id , question , expected_answer \na,hi,hello\n"
    (case,) = load_dataset(write(tmp_path, "d.csv", text)).cases
    assert case.id == "a"
    assert case.inputs == {"question": "hi"}
    assert case.expected == "hello"


def test_csv_only_id_column_gives_empty_inputs(tmp_path):
    (case,) = load_dataset(write(tmp_path, "d.csv", "id\na\n")).cases
    assert case.inputs == {}


def test_csv_tags_split_on_semicolon(tmp_path):
    text = 'id,tags\na,billing;refund\nb," x ; y ;; "\nc,single\nd,"comma,kept"\n'
    cases = load_dataset(write(tmp_path, "d.csv", text)).cases
    assert [c.tags for c in cases] == [("billing", "refund"), ("x", "y"), ("single",), ("comma,kept",)]


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("true", True), ("True", True), ("TRUE", True), ("1", True), ("yes", True), ("y", True), (" Yes ", True),
        ("false", False), ("False", False), ("0", False), ("no", False), ("n", False), ("", False), ("  ", False),
    ],
)
def test_csv_must_pass_parsing(tmp_path, cell, expected):
    text = f'id,must_pass\na,"{cell}"\n'
    (case,) = load_dataset(write(tmp_path, "d.csv", text)).cases
    assert case.must_pass is expected


@pytest.mark.parametrize("cell", ["maybe", "2", "on", "t"])
def test_csv_bad_must_pass(tmp_path, cell):
    text = f"id,must_pass\na,true\nb,{cell}\n"
    error = load_error(write(tmp_path, "d.csv", text))
    assert (error.line, error.field) == (3, "must_pass")
    assert repr(cell) in str(error)
    assert "true/false" in str(error)


def test_csv_quoted_multiline_fields_keep_line_numbers(tmp_path):
    text = (
        "id,question,expected\n"  # 1
        'a,"line one\n'  # 2
        "line two\n"  # 3
        'line three",x\n'  # 4
        "b,plain,y\n"  # 5
        "\n"  # 6 (blank, skipped)
        'c,"two\n'  # 7
        'lines, with ""quotes""",z\n'  # 8
        "d,last,w\n"  # 9
    )
    cases = load_dataset(write(tmp_path, "d.csv", text)).cases
    assert [(c.id, c.line) for c in cases] == [("a", 2), ("b", 5), ("c", 7), ("d", 9)]
    assert cases[0].inputs == {"question": "line one\nline two\nline three"}
    assert cases[2].inputs == {"question": 'two\nlines, with "quotes"'}


def test_csv_crlf_line_endings(tmp_path):
    text = 'id,question\r\na,"x\r\ny"\r\nb,z\r\n'
    cases = load_dataset(write(tmp_path, "d.csv", text)).cases
    assert [(c.id, c.line) for c in cases] == [("a", 2), ("b", 4)]
    assert cases[0].inputs == {"question": "x\r\ny"}


def test_csv_wrong_column_count_after_multiline_field(tmp_path):
    text = 'id,question,expected\na,"x\ny",z\nb,only-two\n'
    error = load_error(write(tmp_path, "d.csv", text))
    assert (error.path, error.line, error.field) == (str(tmp_path / "d.csv"), 4, None)
    assert "expected 3 columns as in the header, found 2" in str(error)


def test_csv_too_many_columns(tmp_path):
    error = load_error(write(tmp_path, "d.csv", "id,question\na,x\nb,y,extra\n"))
    assert (error.line, error.field) == (3, None)
    assert "expected 2 columns" in str(error) and "found 3" in str(error)


def test_csv_missing_and_empty_id(tmp_path):
    error = load_error(write(tmp_path, "noid.csv", "question\nhello\n"))
    assert (error.line, error.field) == (2, "id")
    error = load_error(write(tmp_path, "emptyid.csv", "id,question\na,x\n,y\n"))
    assert (error.line, error.field) == (3, "id")
    assert "missing" in str(error)


def test_csv_column_name_not_an_identifier(tmp_path):
    error = load_error(write(tmp_path, "d.csv", "id,user question\na,hi\n"))
    assert (error.line, error.field) == (2, "inputs")
    assert "'user question'" in str(error)
    assert "identifier" in str(error)


def test_csv_duplicate_id(tmp_path):
    error = load_error(write(tmp_path, "d.csv", "id,q\na,1\nb,2\na,3\n"))
    assert (error.line, error.field) == (4, "id")
    assert "first used on line 2" in str(error)


def test_csv_unclosed_quote_is_an_error(tmp_path):
    text = 'id,question\na,"hello\nb,world\nc,again\n'
    error = load_error(write(tmp_path, "d.csv", text))
    assert error.line == 2
    assert "CSV" in str(error)


@pytest.mark.parametrize("header", ["id,question,question", "id,question,inputs.question"])
def test_csv_duplicate_column_is_an_error(tmp_path, header):
    error = load_error(write(tmp_path, "d.csv", f"{header}\na,one,two\n"))
    assert error.line == 1
    assert "question" in str(error)


# --------------------------------------------------------------------------- order and fingerprint


def test_cases_keep_file_order(tmp_path):
    ids = ["zeta", "alpha", "10", "2", "mike", "beta"]
    path = write(tmp_path, "d.jsonl", jsonl(*({"id": i, "inputs": {}} for i in ids)))
    first = load_dataset(path)
    second = load_dataset(path)
    assert [c.id for c in first.cases] == ids
    assert first == second


def test_fingerprint_is_sha256_of_the_bytes(tmp_path):
    content = jsonl({"id": "a", "inputs": {"q": "x"}}, {"id": "b", "inputs": {"q": "y"}}).encode()
    dataset = load_dataset(write(tmp_path, "d.jsonl", content))
    assert dataset.fingerprint == "sha256:" + hashlib.sha256(content).hexdigest()


def test_same_bytes_same_fingerprint_even_under_another_name(tmp_path):
    content = jsonl({"id": "a", "inputs": {"q": "x"}})
    one = load_dataset(write(tmp_path, "one.jsonl", content))
    two = load_dataset(write(tmp_path, "sub/two.jsonl", content))
    assert one.fingerprint == two.fingerprint


@pytest.mark.parametrize(
    "changed",
    [
        jsonl({"id": "a", "inputs": {"q": "X"}}),  # one letter
        jsonl({"id": "a", "inputs": {"q": "x"}}) + "\n",  # a trailing blank line
        jsonl({"id": "a", "inputs": {"q": "x"}}).replace(" ", "  ", 1),  # whitespace
    ],
)
def test_changed_byte_changes_fingerprint(tmp_path, changed):
    original = load_dataset(write(tmp_path, "a.jsonl", jsonl({"id": "a", "inputs": {"q": "x"}})))
    other = load_dataset(write(tmp_path, "b.jsonl", changed))
    assert other.fingerprint != original.fingerprint


def test_fingerprint_for_yaml_and_csv(tmp_path):
    for name, content in [("d.yaml", "- {id: a, inputs: {}}\n"), ("d.csv", "id\na\n")]:
        dataset = load_dataset(write(tmp_path, name, content))
        assert dataset.fingerprint == "sha256:" + hashlib.sha256(content.encode()).hexdigest()


# --------------------------------------------------------------------------- bad rows


def test_dataset_error_attributes_and_message_format():
    error = DatasetError("evals/d.jsonl", 3, "inputs", "must be a mapping, got str")
    assert isinstance(error, LLMEvalError)
    assert (error.path, error.line, error.field, error.problem) == ("evals/d.jsonl", 3, "inputs", "must be a mapping, got str")
    assert str(error) == "evals/d.jsonl:3: field 'inputs': must be a mapping, got str"
    assert str(DatasetError("d.jsonl", None, None, "dataset is empty")) == "d.jsonl: dataset is empty"


OK_ROW = '{"id": "ok", "inputs": {"q": "fine"}}'

BAD_ROWS = [
    # (id, bad JSONL line, field, fragments of the message)
    ("missing-id", '{"inputs": {"q": "x"}}', "id", ["missing", "id"]),
    ("empty-id", '{"id": "", "inputs": {"q": "x"}}', "id", ["missing"]),
    ("null-id", '{"id": null, "inputs": {"q": "x"}}', "id", ["missing"]),
    ("float-id", '{"id": 1.5, "inputs": {}}', "id", ["string or integer", "float"]),
    ("bool-id", '{"id": true, "inputs": {}}', "id", ["string or integer", "bool"]),
    ("list-id", '{"id": ["a"], "inputs": {}}', "id", ["string or integer", "list"]),
    ("row-list", '["a", {"q": "x"}]', None, ["row must be a mapping", "list"]),
    ("row-string", '"just text"', None, ["row must be a mapping", "str"]),
    ("row-number", "42", None, ["row must be a mapping", "int"]),
    ("row-null", "null", None, ["row must be a mapping", "NoneType"]),
    ("missing-inputs", '{"id": "a", "expected": "x"}', "inputs", ["missing", "inputs mapping"]),
    ("inputs-string", '{"id": "a", "inputs": "hello"}', "inputs", ["must be a mapping", "str"]),
    ("inputs-list", '{"id": "a", "inputs": ["hello"]}', "inputs", ["must be a mapping", "list"]),
    ("inputs-null", '{"id": "a", "inputs": null}', "inputs", ["must be a mapping", "NoneType"]),
    ("inputs-key-space", '{"id": "a", "inputs": {"user question": "x"}}', "inputs", ["'user question'", "identifier"]),
    ("inputs-key-digit", '{"id": "a", "inputs": {"q": 1, "2nd": "x"}}', "inputs", ["'2nd'", "identifier"]),
    ("inputs-key-dash", '{"id": "a", "inputs": {"max-tokens": 5}}', "inputs", ["'max-tokens'", "keyword arguments"]),
    ("both-expected", '{"id": "a", "inputs": {}, "expected": "x", "expected_answer": "y"}', "expected_answer", ["not both"]),
    ("expectd", '{"id": "a", "inputs": {}, "expectd": "x"}', "expectd", ["unknown field", "did you mean 'expected'?"]),
    ("inptus", '{"id": "a", "inptus": {}}', "inptus", ["unknown field", "did you mean 'inputs'?"]),
    ("mustpass", '{"id": "a", "inputs": {}, "mustpass": true}', "mustpass", ["did you mean 'must_pass'?"]),
    ("unknown-no-hint", '{"id": "a", "inputs": {}, "zzz": 1}', "zzz", ["unknown field", "known fields: id, inputs, expected"]),
    ("tags-string", '{"id": "a", "inputs": {}, "tags": "smoke"}', "tags", ["list of strings"]),
    ("tags-ints", '{"id": "a", "inputs": {}, "tags": ["ok", 3]}', "tags", ["list of strings"]),
    ("tags-null", '{"id": "a", "inputs": {}, "tags": null}', "tags", ["list of strings"]),
    ("must-pass-string", '{"id": "a", "inputs": {}, "must_pass": "yes"}', "must_pass", ["true or false", "'yes'"]),
    ("must-pass-int", '{"id": "a", "inputs": {}, "must_pass": 1}', "must_pass", ["true or false", "1"]),
    ("metadata-list", '{"id": "a", "inputs": {}, "metadata": ["x"]}', "metadata", ["must be a mapping", "list"]),
    ("metadata-string", '{"id": "a", "inputs": {}, "metadata": "x"}', "metadata", ["must be a mapping", "str"]),
    ("context-mapping", '{"id": "a", "inputs": {}, "context": {"doc": "x"}}', "context", ["string or a list of strings"]),
    ("context-ints", '{"id": "a", "inputs": {}, "context": ["x", 1]}', "context", ["string or a list of strings"]),
]


@pytest.mark.parametrize("bad, field, fragments", [pytest.param(*row[1:], id=row[0]) for row in BAD_ROWS])
def test_bad_jsonl_row(tmp_path, bad, field, fragments):
    # The bad row is on line 3: a good row and a blank line come first.
    path = write(tmp_path, "evals/support.jsonl", f"{OK_ROW}\n\n{bad}\n{OK_ROW.replace('ok', 'ok2')}\n")
    error = load_error(path, "evals/support.jsonl")
    assert (error.path, error.line, error.field) == ("evals/support.jsonl", 3, field)
    message = str(error)
    assert message.startswith("evals/support.jsonl:3: ")
    if field is not None:
        assert f"field {field!r}" in message
    for fragment in fragments:
        assert fragment in message


def test_duplicate_id_names_both_lines(tmp_path):
    text = jsonl({"id": "a", "inputs": {}}, {"id": "b", "inputs": {}}) + "\n" + jsonl({"id": "a", "inputs": {"q": 2}})
    error = load_error(write(tmp_path, "d.jsonl", text), "d.jsonl")
    assert (error.path, error.line, error.field) == ("d.jsonl", 4, "id")
    assert "duplicate id 'a'" in str(error)
    assert "first used on line 1" in str(error)


def test_integer_and_string_ids_collide(tmp_path):
    error = load_error(write(tmp_path, "d.jsonl", jsonl({"id": 1, "inputs": {}}, {"id": "1", "inputs": {}})))
    assert (error.line, error.field) == (2, "id")
    assert "first used on line 1" in str(error)


def test_first_bad_row_is_reported(tmp_path):
    text = jsonl({"id": "a", "inputs": {}}, {"id": "b"}, {"inputs": {}})
    error = load_error(write(tmp_path, "d.jsonl", text))
    assert (error.line, error.field) == (2, "inputs")


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("{bad json", "invalid JSON"),
        ('{"id": "a", "inputs": {}', "invalid JSON"),
        ('{"id": "a", "inputs": {}},', "invalid JSON"),
        ("{'id': 'a', 'inputs': {}}", "invalid JSON"),
        ('{"id": "a"} {"id": "b"}', "invalid JSON"),
    ],
)
def test_unparsable_jsonl_line(tmp_path, bad, fragment):
    text = f"{OK_ROW}\n\n\n{bad}\n"
    error = load_error(write(tmp_path, "d.jsonl", text), "d.jsonl")
    assert (error.path, error.line, error.field) == ("d.jsonl", 4, None)
    assert str(error).startswith("d.jsonl:4: invalid JSON: ")
    assert "column" in str(error)
    assert fragment in str(error)


def test_jsonl_pretty_printed_object_is_rejected_on_its_first_line(tmp_path):
    text = '{\n  "id": "a",\n  "inputs": {}\n}\n'
    error = load_error(write(tmp_path, "d.jsonl", text))
    assert error.line == 1
    assert "invalid JSON" in str(error)


# --------------------------------------------------------------------------- bad YAML


@pytest.mark.parametrize(
    "text, line",
    [
        ("- id: a\n  inputs: {q: 1}\n- id: b\n  inputs: {q: [1, 2}\n", 4),
        ("- id: a\n  inputs:\n\tq: 1\n", 3),
        ("- id: a\n  inputs: {}\n  expected: 'unclosed\n", 4),
        ("- id: a\n  inputs: {}\n bad-indent: 1\n", 3),
    ],
    ids=["unclosed-flow", "tab", "unclosed-quote", "bad-indent"],
)
def test_invalid_yaml_names_its_line(tmp_path, text, line):
    error = load_error(write(tmp_path, "d.yaml", text), "d.yaml")
    assert (error.path, error.line, error.field) == ("d.yaml", line, None)
    assert str(error).startswith(f"d.yaml:{line}: invalid YAML: ")


def test_multiple_yaml_documents_are_rejected(tmp_path):
    error = load_error(write(tmp_path, "d.yaml", "- {id: a, inputs: {}}\n---\n- {id: b, inputs: {}}\n"))
    assert error.line == 2
    assert "invalid YAML" in str(error)


@pytest.mark.parametrize(
    "text",
    ["just a string\n", "id: a\ninputs: {}\n", "rows:\n  - {id: a, inputs: {}}\n", "cases: {id: a, inputs: {}}\n"],
    ids=["scalar", "single-row-mapping", "mapping-without-cases", "cases-not-a-list"],
)
def test_yaml_top_level_must_be_a_list(tmp_path, text):
    error = load_error(write(tmp_path, "d.yaml", text), "d.yaml")
    assert (error.path, error.line, error.field) == ("d.yaml", 1, None)
    assert "must be a list of rows" in str(error)
    assert "cases:" in str(error)


def test_yaml_bad_rows_name_their_line(tmp_path):
    base = "# header comment\n- id: a\n  inputs: {}\n"
    cases = {
        "- just text\n": (4, None, "row must be a mapping"),
        "- inputs: {q: 1}\n": (4, "id", "missing"),
        "- id: b\n  expectd: x\n  inputs: {}\n": (4, "expectd", "did you mean 'expected'?"),
        "- id: b\n  inputs: [q]\n": (4, "inputs", "must be a mapping"),
        "- id: b\n  inputs: {1: x}\n": (4, "inputs", "identifier"),
        "- id: a\n  inputs: {}\n": (4, "id", "first used on line 2"),
        "- id: b\n  inputs: {}\n  must_pass: maybe\n": (4, "must_pass", "'maybe'"),
        "- id: [1]\n  inputs: {}\n": (4, "id", "string or integer"),
    }
    for tail, (line, field, fragment) in cases.items():
        error = load_error(write(tmp_path, "d.yaml", base + tail), "d.yaml")
        assert (error.path, error.line, error.field) == ("d.yaml", line, field), tail
        assert fragment in str(error), tail


def test_yaml_bad_row_under_cases_names_its_line(tmp_path):
    text = "cases:\n  - id: a\n    inputs: {}\n\n  - id: b\n"
    error = load_error(write(tmp_path, "d.yaml", text))
    assert (error.line, error.field) == (5, "inputs")


# --------------------------------------------------------------------------- whole-file problems


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n   \n\t\n"),
        ("crlf-blank.jsonl", "\r\n\r\n"),
        ("bom-only.jsonl", "\ufeff"),
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing here yet\n\n"),
        ("empty-list.yaml", "[]\n"),
        ("empty-cases.yaml", "cases: []\n"),
        ("empty.csv", ""),
        ("header-only.csv", "id,question\n"),
        ("header-and-blanks.csv", "id,question\n\n\n"),
    ],
)
def test_empty_dataset(tmp_path, name, content):
    error = load_error(write(tmp_path, name, content), name)
    assert (error.path, error.line, error.field) == (name, None, None)
    assert str(error) == f"{name}: dataset is empty: no rows"


def test_missing_file(tmp_path):
    error = load_error(tmp_path / "evals" / "nope.jsonl", "evals/nope.jsonl")
    assert (error.path, error.line, error.field) == ("evals/nope.jsonl", None, None)
    assert str(error) == "evals/nope.jsonl: dataset file not found"


def test_missing_file_without_name_shows_the_path(tmp_path):
    path = tmp_path / "nope.yaml"
    error = load_error(path)
    assert error.path == str(path)
    assert "not found" in str(error)


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "cases.jsonl").mkdir()
    error = load_error(tmp_path / "cases.jsonl", "cases.jsonl")
    assert (error.path, error.line, error.field) == ("cases.jsonl", None, None)
    assert "cannot read dataset" in str(error)


@pytest.mark.parametrize("name, shown", [("d.json", "'.json'"), ("d.txt", "'.txt'"), ("dataset", "'(none)'"), ("d.jsonl.bak", "'.bak'")])
def test_unsupported_extension(tmp_path, name, shown):
    # The extension is checked before the file is read: it need not exist.
    error = load_error(tmp_path / name, name)
    assert (error.path, error.line, error.field) == (name, None, None)
    message = str(error)
    assert "unsupported dataset format" in message
    assert shown in message
    for suffix in (".jsonl", ".yaml", ".yml", ".csv"):
        assert suffix in message


@pytest.mark.parametrize("name", ["d.jsonl", "d.yaml", "d.csv"])
def test_non_utf8_bytes(tmp_path, name):
    content = {"d.jsonl": b'{"id": "a", "inputs": {"q": "caf\xe9"}}\n',
               "d.yaml": b"- id: a\n  inputs: {q: caf\xe9}\n",
               "d.csv": b"id,q\na,caf\xe9\n"}[name]
    error = load_error(write(tmp_path, name, content), name)
    assert (error.path, error.line, error.field) == (name, None, None)
    assert "not UTF-8" in str(error)
    offset = content.index(bytes([0xE9]))
    assert f"at byte {offset}" in str(error)


@pytest.mark.parametrize(
    "name, content, field",
    [
        ("a.jsonl", "[]\n", None),
        ("b.yaml", "- [1, 2]\n", None),
        ("c.yaml", "- {id: a, inputs: {}, 1: x}\n", "1"),
        ("d.yaml", "- {id: a, inputs: {}, [x]: y}\n", None),
    ],
    ids=["jsonl-list-row", "yaml-list-row", "yaml-int-key", "yaml-complex-key"],
)
def test_odd_rows_are_dataset_errors(tmp_path, name, content, field):
    # Odd input must come out as DatasetError naming line 1, never KeyError/TypeError/...
    error = load_error(write(tmp_path, name, content), name)
    assert (error.path, error.line) == (name, 1)
    if field is not None:
        assert error.field == field


# --------------------------------------------------------------------------- case_content_hash


BASE = Case(
    id="a",
    inputs={"question": "Where is my order?"},
    expected="tracking",
    context=["Orders ship in 2 days."],
    tags=("orders",),
    must_pass=False,
    metadata={"source": "faq"},
    line=3,
)


def test_content_hash_is_stable_and_pinned():
    # Baselines committed to users' repos pair cases by this value: it must not drift.
    assert case_content_hash(BASE) == "f477d874308f"
    assert case_content_hash(BASE) == case_content_hash(BASE)
    assert BASE.content_hash == case_content_hash(BASE)


def test_content_hash_shape():
    value = case_content_hash(BASE)
    assert len(value) == 12
    int(value, 16)


def test_content_hash_ignores_input_key_order():
    reordered = Case(id="a", inputs={"b": 2, "a": 1})
    assert case_content_hash(reordered) == case_content_hash(Case(id="a", inputs={"a": 1, "b": 2}))


@pytest.mark.parametrize(
    "change",
    [
        {"inputs": {"question": "Where is my parcel?"}},
        {"inputs": {"question": "Where is my order?", "lang": "en"}},
        {"expected": "tracking link"},
        {"expected": None},
        {"expected": ["tracking"]},
        {"context": ["Orders ship in 3 days."]},
        {"context": "Orders ship in 2 days."},
        {"context": None},
    ],
)
def test_content_hash_changes_with_content(change):
    from dataclasses import replace

    assert case_content_hash(replace(BASE, **change)) != case_content_hash(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"tags": ("orders", "smoke")},
        {"tags": ()},
        {"metadata": {"source": "ticket-9", "owner": "bob"}},
        {"metadata": {}},
        {"must_pass": True},
        {"line": 99},
        {"repeat": 2},
        {"id": "renamed"},
    ],
)
def test_content_hash_ignores_labels(change):
    from dataclasses import replace

    assert case_content_hash(replace(BASE, **change)) == case_content_hash(BASE)


def test_content_hash_same_for_same_row_in_any_format(tmp_path):
    jsonl_case = load_dataset(write(tmp_path, "d.jsonl", jsonl({"id": "a", "inputs": {"q": "hi"}, "expected": "yo", "tags": ["x"]}))).cases[0]
    yaml_case = load_dataset(write(tmp_path, "d.yaml", "- id: a\n  inputs: {q: hi}\n  expected: yo\n")).cases[0]
    csv_case = load_dataset(write(tmp_path, "d.csv", "id,q,expected,metadata.m\na,hi,yo,1\n")).cases[0]
    assert jsonl_case.content_hash == yaml_case.content_hash == csv_case.content_hash


def test_content_hash_of_yaml_expected_with_mixed_keys(tmp_path):
    (case,) = load_dataset(write(tmp_path, "d.yaml", "- id: a\n  inputs: {}\n  expected: {200: ok, error: none}\n")).cases
    assert len(case.content_hash) == 12


# --------------------------------------------------------------------------- what the user wrote


def test_yaml_1_1_surprises_keep_the_written_text_where_a_string_is_expected(tmp_path):
    text = (
        "- id: 010\n  inputs: {q: 'a'}\n  expected: yes\n  tags: [on, 'x']\n  context: off\n"
        "- id: b\n  inputs: {q: 'b'}\n  expected: NO\n  must_pass: yes\n"
        "- id: c\n  inputs: {q: 'c'}\n  expected: 1.10\n  must_pass: off\n"
        "- id: d\n  inputs: {q: 'd'}\n  expected: {time: 1:30, day: 2024-01-02, hex: 0x1F}\n"
        "- id: e\n  inputs: {q: 'e', n: 10, x: 0.5, flag: true}\n  expected: true\n"
    )
    cases = {case.id: case for case in load_dataset(write(tmp_path, "d.yaml", text)).cases}
    assert list(cases) == ["010", "b", "c", "d", "e"]
    assert cases["010"].expected == "yes" and cases["010"].tags == ("on", "x") and cases["010"].context == "off"
    assert cases["b"].expected == "NO" and cases["b"].must_pass is True
    assert cases["c"].expected == "1.10" and cases["c"].must_pass is False
    assert cases["d"].expected == {"time": "1:30", "day": "2024-01-02", "hex": "0x1F"}
    assert cases["e"].expected is True and cases["e"].inputs == {"q": "e", "n": 10, "x": 0.5, "flag": True}
    assert all(type(case.id) is str and type(case.expected) in (str, bool, dict) for case in cases.values())


@pytest.mark.parametrize(("row", "line", "field", "meaning"), [
    ("- id: a\n  inputs:\n    answer: yes\n", 3, "inputs.answer", "the boolean True"),
    ("- id: a\n  inputs: {n: 010}\n", 2, "inputs.n", "the integer 8"),
    ("- id: a\n  inputs: {items: [1, 1:30]}\n", 2, "inputs.items[1]", "the integer 90"),
    ("- id: a\n  inputs: {}\n  metadata: {version: 1.10}\n", 3, "metadata.version", "the number 1.1"),
    ("- id: a\n  inputs: {day: 2024-01-02}\n", 2, "inputs.day", "the date 2024-01-02"),
])
def test_yaml_1_1_surprises_in_inputs_and_metadata_are_refused_with_a_hint(tmp_path, row, line, field, meaning):
    error = load_error(write(tmp_path, "d.yaml", row), "d.yaml")
    assert (error.line, error.field) == (line, field)
    assert f"is read by YAML 1.1 as {meaning}" in str(error) and "quote it" in str(error)
    quoted = load_dataset(write(tmp_path, "q.yaml", row.replace(": yes", ": 'yes'").replace("010", "'010'")
                                .replace("1:30", "'1:30'").replace("1.10", "'1.10'").replace("2024-01-02", "'2024-01-02'")))
    assert quoted.cases[0].id == "a"  # quoted, the same row loads


@pytest.mark.parametrize(("name", "content", "line", "key"), [
    ("d.yaml", "- id: a\n  inputs: {}\n  id: b\n", 3, "id"),
    ("d.yaml", "- id: a\n  inputs:\n    q: 1\n    q: 2\n", 4, "q"),
    ("d.yaml", "cases:\n  - id: a\n    inputs: {}\ncases: []\n", 4, "cases"),
    ("d.jsonl", '{"id": "a", "inputs": {}}\n{"id": "b", "inputs": {"q": 1, "q": 2}}\n', 2, "q"),
    ("d.jsonl", '{"id": "a", "expected": "x", "inputs": {}, "expected": "y"}\n', 1, "expected"),
])
def test_a_key_given_twice_names_file_line_and_key(tmp_path, name, content, line, key):
    error = load_error(write(tmp_path, name, content), name)
    assert (error.path, error.line, error.field) == (name, line, key)
    assert "given twice" in str(error)


def test_a_merge_key_may_still_be_overridden(tmp_path):
    text = "defaults: &d {inputs: {q: 1}, expected: x}\ncases:\n  - <<: *d\n    id: a\n  - <<: *d\n    id: b\n    expected: y\n"
    cases = load_dataset(write(tmp_path, "d.yaml", text)).cases
    assert [(c.id, c.inputs, c.expected) for c in cases] == [("a", {"q": 1}, "x"), ("b", {"q": 1}, "y")]


def _laughs(levels: int) -> str:
    lines = ['a0: &a0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + f"\ncases:\n  - id: x\n    inputs: {{q: *a{levels}}}\n"


@pytest.mark.parametrize("levels", [8, 9])
def test_billion_laughs_fails_fast(tmp_path, levels):
    import time

    path = write(tmp_path, "d.yaml", _laughs(levels))
    assert len(path.read_bytes()) < 600  # a few hundred bytes
    started = time.perf_counter()
    error = load_error(path, "d.yaml")
    assert time.perf_counter() - started < 2.0
    assert "aliases expand the document to" in str(error) and "billion laughs" in str(error)


def test_modest_alias_use_is_fine(tmp_path):
    rows = "".join(f"  - id: r{i}\n    inputs: *shared\n" for i in range(200))
    cases = load_dataset(write(tmp_path, "d.yaml", "shared: &shared {q: hello, n: 1}\ncases:\n" + rows)).cases
    assert len(cases) == 200 and cases[0].inputs is not cases[1].inputs and cases[199].inputs == {"q": "hello", "n": 1}


@pytest.mark.parametrize(("name", "content", "line", "fragment"), [
    ("d.yaml", "- id: a\n  inputs: {q: " + "[" * 150 + "]" * 150 + "}\n", None, "nested more than 100 levels deep"),
    ("d.yaml", "- id: a\n  inputs: {q: " + "[" * 100_000 + "]" * 100_000 + "}\n", None, "nested more than 100 levels deep"),
    ("d.yaml", "- &row\n  id: a\n  inputs: {self: *row}\n", 1, "refers to a mapping or list that contains it"),
    ("d.jsonl", '{"id": "a", "inputs": {}}\n{"id": "b", "inputs": {"q": ' + "[" * 150 + "]" * 150 + "}}\n", 2,
     "nested more than 100 levels deep"),
    ("d.jsonl", '{"id": "a", "inputs": {}}\n{"id": "b", "inputs": {"q": ' + "[" * 100_000 + "]" * 100_000 + "}}\n", 2,
     "nested more than 100 levels deep"),
    ("d.jsonl", '{"id": "a", "inputs": {"x": NaN}}\n', 1, "NaN is not a finite number"),
])
def test_deep_nesting_and_self_reference_name_the_file_not_a_traceback(tmp_path, name, content, line, fragment):
    error = load_error(write(tmp_path, name, content), name)
    assert error.path == name and fragment in str(error)
    if line is not None:
        assert error.line == line
