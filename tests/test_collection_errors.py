"""Bad datasets and bad ``llm_eval`` markers are collection errors, seen through real pytest runs.

Every error must name what to fix (the dataset file and line, and the field where there is
one; or the marker argument), stop the run with exit code 2 ("Interrupted: N errors during
collection") and show no traceback into the plugin's code.

Speed: every interrupted in-process run costs pytest ~0.2 s (it renders the Interrupted
traceback even when it does not print it). So the must-have cases get a run each, and the
full catalogues run once, one module per bad case, with each module's error section checked
on its own.
"""

from __future__ import annotations

import json
import re

import pytest

from pytest_llmeval.scorers import default_registry

INTERRUPTED = pytest.ExitCode.INTERRUPTED
GOOD_ROW = {"id": "ok-1", "inputs": {"question": "Where is my order?"}, "expected": "tracking"}
OK_LINE = json.dumps(GOOD_ROW)
KNOWN_SCORERS = "Known scorers: " + ", ".join(default_registry().names())


def write_suite(
    pytester: pytest.Pytester, marker_args: str, *, module: str = "test_suite", params: str = "llm_case, llm_eval"
) -> None:
    """A test module with one marked suite ``test_support``; ``marker_args`` is pasted into the marker."""
    pytester.makepyfile(
        **{
            module: f"""
            import pytest

            def answer(question):
                return "your tracking link: https://example.test/track"

            @pytest.mark.llm_eval({marker_args})
            def test_support({params}):
                pass
            """
        }
    )


def write_file(pytester: pytest.Pytester, name: str, content: str | bytes) -> str:
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return name


def output_of(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


def assert_clean_output(out: str) -> None:
    """No traceback of any kind, least of all into the plugin's own files."""
    assert "Traceback" not in out, out
    assert "pytest_llmeval/" not in out and "pytest_llmeval\\" not in out, out
    assert "site-packages" not in out, out
    assert "INTERNALERROR" not in out, out
    assert not re.search(r"^E\s", out, re.MULTILINE), out  # no "E   SomeError: ..." lines of a traceback


def assert_collection_error(result: pytest.RunResult, *fragments: str, module: str = "test_suite.py") -> str:
    """Exit code 2, exactly one collection error (in ``module``), every fragment shown, no traceback."""
    out = output_of(result)
    assert result.ret == INTERRUPTED, out
    result.stdout.fnmatch_lines([f"*ERROR collecting {module}*", "*Interrupted: 1 error during collection*"])
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} not in output:\n{out}"
    assert_clean_output(out)
    assert re.search(r"\b1 error in ", result.outlines[-1]), out  # nothing ran, nothing else failed
    return out


def error_sections(result: pytest.RunResult) -> dict[str, str]:
    """The text under each ``ERROR collecting <file>`` header, by file."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in result.outlines:
        header = re.fullmatch(r"_+ ERROR collecting (\S+) _+", line)
        if header:
            current = sections.setdefault(header.group(1), [])
        elif line.startswith("=") or line.startswith("_"):
            current = None
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


# --------------------------------------------------------------------------- sanity


def test_good_dataset_collects_one_item_per_row(pytester, write_jsonl):
    write_jsonl("evals/support.jsonl", [GOOD_ROW, {**GOOD_ROW, "id": "ok-2"}])
    write_suite(pytester, 'dataset="evals/support.jsonl", target=answer, scorers=["contains"]')
    result = pytester.runpytest("--llm-eval", "--collect-only", "-q", "-p", "no:randomly")  # rows in dataset order
    assert result.ret == pytest.ExitCode.OK, output_of(result)
    result.stdout.fnmatch_lines(["test_suite.py::test_support[[]ok-1]", "test_suite.py::test_support[[]ok-2]", "2 tests collected*"])


# --------------------------------------------------------------------------- bad datasets

# (id, suffix, content, where the error is ("{path}" is the dataset as shown), message fragments)
BAD_DATASETS = [
    ("missing-id", ".jsonl", f'{OK_LINE}\n{{"inputs": {{"question": "x"}}}}\n',
     "{path}:2: field 'id': missing", []),
    ("empty-id", ".jsonl", f'{OK_LINE}\n\n{{"id": "", "inputs": {{}}}}\n',
     "{path}:3: field 'id': missing", []),
    ("duplicate-id", ".jsonl", f'{OK_LINE}\n{json.dumps({**GOOD_ROW, "id": "ok-2"})}\n\n{OK_LINE}\n',
     "{path}:4: field 'id': duplicate id 'ok-1' (first used on line 1)", []),
    ("non-mapping-row", ".jsonl", f'{OK_LINE}\n["ok-2", "question"]\n',
     "{path}:2: a row must be a mapping, got list", []),
    ("missing-inputs", ".jsonl", f'{OK_LINE}\n{{"id": "b", "expected": "x"}}\n',
     "{path}:2: field 'inputs': missing", []),
    ("inputs-not-mapping", ".jsonl", f'{OK_LINE}\n{{"id": "b", "inputs": "hello"}}\n',
     "{path}:2: field 'inputs': must be a mapping, got str", []),
    ("inputs-key", ".jsonl", '{"id": "b", "inputs": {"user question": "x"}}\n',
     "{path}:1: field 'inputs'", ["'user question'", "identifier"]),
    ("both-expected", ".jsonl", '{"id": "b", "inputs": {}, "expected": 1, "expected_answer": 1}\n',
     "{path}:1: field 'expected_answer'", ["not both"]),
    ("unknown-field", ".jsonl", f'{OK_LINE}\n{{"id": "b", "inputs": {{}}, "expectd": "x"}}\n',
     "{path}:2: field 'expectd': unknown field; did you mean 'expected'?", []),
    ("bad-tags", ".jsonl", '{"id": "b", "inputs": {}, "tags": "smoke"}\n',
     "{path}:1: field 'tags': must be a list of strings", []),
    ("bad-must-pass", ".jsonl", '{"id": "b", "inputs": {}, "must_pass": "yes"}\n',
     "{path}:1: field 'must_pass': must be true or false, got 'yes'", []),
    ("bad-metadata", ".jsonl", '{"id": "b", "inputs": {}, "metadata": [1]}\n',
     "{path}:1: field 'metadata': must be a mapping, got list", []),
    ("unparsable-line", ".jsonl", f'{OK_LINE}\n\n{{"id": "b", "inputs": {{}}\n',
     "{path}:3: invalid JSON: ", ["column"]),
    ("empty-file", ".jsonl", "", "{path}: dataset is empty: no rows", []),
    ("blank-lines-only", ".jsonl", "\n\n  \n", "{path}: dataset is empty: no rows", []),
    ("non-utf8", ".jsonl", b'{"id": "a", "inputs": {"q": "caf\xe9"}}\n', "{path}: not UTF-8 text", ["invalid continuation byte at byte 32"]),
    ("invalid-yaml", ".yaml", "- id: a\n  inputs: {}\n- id: b\n  inputs: {q: [1}\n",
     "{path}:4: invalid YAML: ", []),
    ("yaml-missing-id", ".yaml", "cases:\n  - id: a\n    inputs: {}\n  - inputs: {}\n",
     "{path}:4: field 'id': missing", []),
    ("yaml-not-a-list", ".yml", "id: a\ninputs: {}\n", "{path}:1: a YAML dataset must be a list of rows", []),
    ("csv-column-count", ".csv", 'id,question\na,"multi\nline"\nb,x,extra\n',
     "{path}:4: expected 2 columns as in the header, found 3", []),
    ("csv-must-pass", ".csv", "id,question,must_pass\na,x,maybe\n",
     "{path}:2: field 'must_pass': expected true/false, got 'maybe'", []),
    ("csv-empty", ".csv", "id,question\n", "{path}: dataset is empty: no rows", []),
    ("unsupported-extension", ".json", json.dumps([GOOD_ROW]),
     "{path}: unsupported dataset format '.json'", [".jsonl, .yaml, .yml, .csv"]),
]
BY_ID = {row[0]: row[1:] for row in BAD_DATASETS}
MUST_HAVE = ["missing-id", "duplicate-id", "non-mapping-row", "missing-inputs", "unparsable-line",
             "empty-file", "blank-lines-only", "invalid-yaml", "csv-column-count"]


@pytest.mark.parametrize("case", MUST_HAVE)
def test_bad_dataset_is_a_collection_error(pytester, case):
    suffix, content, where, fragments = BY_ID[case]
    path = write_file(pytester, f"evals/support{suffix}", content)
    write_suite(pytester, f'dataset="{path}", target=answer, scorers=["contains"]')
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(result, where.format(path=path), *fragments)


def test_every_bad_dataset_in_one_run(pytester):
    # One module per bad dataset; pytest collects them all, then stops with N errors.
    for case, (suffix, content, _, _) in BY_ID.items():
        path = write_file(pytester, f"evals/{case}{suffix}", content)
        write_suite(pytester, f'dataset="{path}", target=answer', module=f"test_{case.replace('-', '_')}")
    result = pytester.runpytest("--llm-eval")
    out = output_of(result)
    assert result.ret == INTERRUPTED, out
    result.stdout.fnmatch_lines([f"*Interrupted: {len(BY_ID)} errors during collection*"])
    assert_clean_output(out)
    sections = error_sections(result)
    assert len(sections) == len(BY_ID), sorted(sections)
    for case, (suffix, _, where, fragments) in BY_ID.items():
        section = sections[f"test_{case.replace('-', '_')}.py"]
        assert where.format(path=f"evals/{case}{suffix}") in section, (case, section)
        for fragment in fragments:
            assert fragment in section, (case, section)
        # The error is about this module's dataset only.
        assert section.count("evals/") == 1, (case, section)


def test_missing_dataset_file(pytester):
    write_suite(pytester, 'dataset="evals/nope.jsonl", target=answer, scorers=["contains"]')
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(result, "evals/nope.jsonl: dataset file not found")


def test_dataset_path_is_relative_to_the_test_file_and_shown_from_rootdir(pytester):
    write_file(pytester, "tests/data/cases.jsonl", '{"id": "a"}\n')
    pytester.makepyfile(
        **{
            "tests/test_nested.py": """
            import pytest

            @pytest.mark.llm_eval(dataset="data/cases.jsonl")
            def test_nested(llm_case):
                pass
            """
        }
    )
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(result, "tests/data/cases.jsonl:1: field 'inputs': missing", module="tests/test_nested.py")


def test_one_bad_suite_among_good_ones(pytester, write_jsonl):
    write_jsonl("good.jsonl", [GOOD_ROW])
    write_file(pytester, "bad.jsonl", f"{OK_LINE}\n{OK_LINE}\n")
    write_suite(pytester, 'dataset="bad.jsonl", target=answer')
    pytester.makepyfile(
        test_fine="""
        import pytest

        @pytest.mark.llm_eval(dataset="good.jsonl")
        def test_fine(llm_case):
            pass

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("--llm-eval")
    out = assert_collection_error(result, "bad.jsonl:2: field 'id': duplicate id 'ok-1' (first used on line 1)")
    assert "good.jsonl" not in out, out
    assert list(error_sections(result)) == ["test_suite.py"]


def test_bad_dataset_under_xdist_still_names_file_and_line(pytester):
    pytest.importorskip("xdist")
    write_file(pytester, "evals/support.jsonl", f'{OK_LINE}\n\n{{"id": "b", "input": {{}}}}\n')
    write_suite(pytester, 'dataset="evals/support.jsonl", target=answer, scorers=["contains"]')
    result = pytester.runpytest("--llm-eval", "-n", "2")
    out = output_of(result)
    # xdist's controller does not raise pytest's "Interrupted" for errors its workers report
    # while collecting: the run ends with exit code 1 there, not 2. Either way nothing runs.
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, INTERRUPTED), out
    result.stdout.fnmatch_lines(["*2 workers [[]0 items]*", "*ERROR collecting test_suite.py*", "*1 error in*"])
    assert "evals/support.jsonl:3: field 'input': unknown field; did you mean 'inputs'?" in out, out
    assert_clean_output(out)


# --------------------------------------------------------------------------- bad markers


@pytest.fixture
def dataset(write_jsonl) -> str:
    return write_jsonl("support.jsonl", [GOOD_ROW])


def marker_where(module: str = "test_suite") -> str:
    return f"{module}.py::test_support: @pytest.mark.llm_eval: "


# (id, marker arguments, message fragments after "<suite>: @pytest.mark.llm_eval: ")
BAD_MARKERS = [
    ("unknown-argument", 'dataset="support.jsonl", scorer=["contains"]',
     ["unknown argument 'scorer'; did you mean 'scorers'?"]),
    ("unknown-argument-threshold", 'dataset="support.jsonl", threshold={"contains": 0.8}',
     ["unknown argument 'threshold'; did you mean 'thresholds'?"]),
    ("unknown-argument-no-hint", 'dataset="support.jsonl", zzzz=1',
     ["unknown argument 'zzzz'; known: dataset, scorers, thresholds, case_thresholds, target, repeats, max_drop"]),
    ("positional-argument", '"support.jsonl"',
     ["takes keyword arguments only"]),
    ("missing-dataset", 'target=answer, scorers=["contains"]',
     ["dataset= is required"]),
    ("target-not-callable", 'dataset="support.jsonl", target="answer"',
     ["target= must be a callable taking the case's inputs, got 'answer'"]),
    ("threshold-above-one", 'dataset="support.jsonl", scorers=["contains"], thresholds={"contains": 85}',
     ["thresholds['contains'] must be a number in [0, 1], got 85"]),
    ("threshold-negative", 'dataset="support.jsonl", scorers=["contains"], thresholds={"contains": -0.1}',
     ["thresholds['contains'] must be a number in [0, 1], got -0.1"]),
    ("threshold-nan", 'dataset="support.jsonl", scorers=["contains"], thresholds={"contains": float("nan")}',
     ["thresholds['contains'] must be a number in [0, 1], got nan"]),
    ("threshold-string", 'dataset="support.jsonl", scorers=["contains"], thresholds={"contains": "0.8"}',
     ["thresholds['contains'] must be a number in [0, 1], got '0.8'"]),
    ("threshold-bool", 'dataset="support.jsonl", scorers=["contains"], thresholds={"contains": True}',
     ["thresholds['contains'] must be a number in [0, 1], got True"]),
    ("thresholds-not-mapping", 'dataset="support.jsonl", scorers=["contains"], thresholds=0.8',
     ["thresholds= must be a mapping of metric name to a number in [0, 1], got 0.8"]),
    ("case-threshold", 'dataset="support.jsonl", scorers=["contains"], case_thresholds={"contains": 2}',
     ["case_thresholds['contains'] must be a number in [0, 1], got 2"]),
    ("max-drop", 'dataset="support.jsonl", scorers=["contains"], max_drop=1.5',
     ["max_drop= must be a number in [0, 1], got 1.5"]),
    ("repeats-zero", 'dataset="support.jsonl", repeats=0',
     ["repeats= must be a positive integer or 'auto', got 0"]),
    ("repeats-negative", 'dataset="support.jsonl", repeats=-2',
     ["repeats= must be a positive integer or 'auto', got -2"]),
    ("repeats-string", 'dataset="support.jsonl", repeats="3"',
     ["repeats= must be a positive integer or 'auto', got '3'"]),
    ("repeats-float", 'dataset="support.jsonl", repeats=2.0',
     ["repeats= must be a positive integer or 'auto', got 2.0"]),
    ("repeats-bool", 'dataset="support.jsonl", repeats=True',
     ["repeats= must be a positive integer or 'auto', got True"]),
]
MARKER_BY_ID = {row[0]: row[1:] for row in BAD_MARKERS}

# (id, scorers= value, message fragments)
BAD_SCORERS = [
    ("unknown-name", '["containz"]',
     ["unknown scorer 'containz'; did you mean 'contains'?", KNOWN_SCORERS]),
    ("unknown-name-in-tuple", '[("exact_mach", {"case_sensitive": False})]',
     ["unknown scorer 'exact_mach'; did you mean 'exact_match'?", KNOWN_SCORERS]),
    ("unknown-name-no-hint", '["bleu_score_9000"]',
     ["unknown scorer 'bleu_score_9000'", KNOWN_SCORERS]),
    ("bad-option", '[("regex", {"patern": "x"})]',
     ["scorer 'regex': bad options ['patern']", "unexpected keyword argument 'patern'"]),
    ("option-the-scorer-lacks", '[("json_valid", {"case_sensitive": True})]',
     ["scorer 'json_valid': bad options ['case_sensitive']"]),
    ("invalid-regex", '[("regex", {"pattern": "([a-z]+"})]',
     ["scorer 'regex': invalid pattern '([a-z]+'", "missing ), unterminated subpattern"]),
    ("bad-entry", '[("regex",)]',
     ["bad scorer entry ('regex',): use 'name' or ('name', {option: value})"]),
    ("bad-entry-type", "[42]",
     ["bad scorer entry 42"]),
    ("metric-twice", '["contains", "contains"]',
     ["metric 'contains' is produced twice; give one entry the option 'name'"]),
]
SCORER_BY_ID = {row[0]: row[1:] for row in BAD_SCORERS}


@pytest.mark.parametrize(
    "case", ["unknown-argument", "missing-dataset", "target-not-callable", "threshold-above-one", "repeats-zero"]
)
def test_bad_marker_argument(pytester, dataset, case):
    marker_args, fragments = MARKER_BY_ID[case]
    write_suite(pytester, marker_args)
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(result, *(marker_where() + fragment for fragment in fragments))


@pytest.mark.parametrize("case", ["unknown-name", "bad-option", "invalid-regex"])
def test_bad_scorer(pytester, dataset, case):
    scorers, fragments = SCORER_BY_ID[case]
    write_suite(pytester, f'dataset="support.jsonl", target=answer, scorers={scorers}')
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(result, *fragments)


def test_every_bad_marker_in_one_run(pytester, dataset):
    expected: dict[str, list[str]] = {}
    for case, (marker_args, fragments) in MARKER_BY_ID.items():
        module = "test_marker_" + case.replace("-", "_")
        write_suite(pytester, marker_args, module=module)
        expected[module + ".py"] = [marker_where(module) + fragment for fragment in fragments]
    for case, (scorers, fragments) in SCORER_BY_ID.items():
        module = "test_scorer_" + case.replace("-", "_")
        write_suite(pytester, f'dataset="support.jsonl", target=answer, scorers={scorers}', module=module)
        expected[module + ".py"] = fragments
    result = pytester.runpytest("--llm-eval")
    out = output_of(result)
    assert result.ret == INTERRUPTED, out
    result.stdout.fnmatch_lines([f"*Interrupted: {len(expected)} errors during collection*"])
    assert_clean_output(out)
    sections = error_sections(result)
    assert sorted(sections) == sorted(expected)
    for module, fragments in expected.items():
        for fragment in fragments:
            assert fragment in sections[module], (module, sections[module])


def test_scorer_error_names_the_suite(pytester, dataset):
    pytester.makepyfile(
        test_suite="""
        import pytest

        @pytest.mark.llm_eval(dataset="support.jsonl", scorers=["contains"])
        def test_good(llm_case):
            pass

        @pytest.mark.llm_eval(dataset="support.jsonl", scorers=["containz"])
        def test_bad(llm_case):
            pass
        """
    )
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(result, "test_suite.py::test_bad", "unknown scorer 'containz'")


def test_renamed_metric_makes_the_same_scorer_usable_twice(pytester, dataset):
    # Control for "metric-twice" and "invalid-regex": valid patterns and name= collect fine.
    write_suite(
        pytester,
        'dataset="support.jsonl", target=answer, '
        'scorers=[("regex", {"pattern": "track"}), ("regex", {"pattern": "https?://", "name": "has_link"})]',
    )
    result = pytester.runpytest("--llm-eval", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, output_of(result)
    result.stdout.fnmatch_lines(["test_suite.py::test_support[[]ok-1]"])


@pytest.mark.parametrize("value", ["None", "42"])
def test_dataset_of_wrong_type(pytester, value):
    write_suite(pytester, f"dataset={value}, target=answer")
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(result, marker_where() + "dataset=")


def test_scorers_none(pytester, dataset):
    write_suite(pytester, 'dataset="support.jsonl", target=answer, scorers=None')
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(result, marker_where() + "scorers=")


def test_marked_test_without_the_fixtures(pytester, dataset):
    write_suite(pytester, 'dataset="support.jsonl", target=answer, scorers=["contains"]', params="")
    result = pytester.runpytest("--llm-eval")
    assert_collection_error(
        result, "test_suite.py::test_support: a test marked llm_eval must request the llm_case or llm_eval fixture"
    )


def test_marked_test_requesting_only_llm_eval_is_fine(pytester, dataset):
    write_suite(pytester, 'dataset="support.jsonl", target=answer, scorers=["contains"]', params="llm_eval")
    result = pytester.runpytest("--llm-eval", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, output_of(result)
    result.stdout.fnmatch_lines(["test_suite.py::test_support[[]ok-1]"])


def test_marked_test_without_the_fixtures_fails_even_without_the_flag(pytester, dataset):
    # Misusing the marker needs no dataset read, so it is reported in every run.
    write_suite(pytester, 'dataset="support.jsonl"', params="")
    result = pytester.runpytest()
    assert_collection_error(result, "must request the llm_case or llm_eval fixture")


# --------------------------------------------------------------------------- without --llm-eval


def test_without_the_flag_broken_datasets_are_not_read(pytester):
    # Four suites whose datasets are broken in four ways, plus an ordinary test.
    broken = {
        "bad_rows": ("support.jsonl", '{"inputs": {}}\n{bad json\n'),
        "missing_file": ("absent.jsonl", None),
        "invalid_yaml": ("support.yaml", "- id: [unclosed\n"),
        "empty_csv": ("support.csv", ""),
    }
    for module, (name, content) in broken.items():
        if content is not None:
            write_file(pytester, name, content)
        write_suite(pytester, f'dataset="{name}", target=answer, scorers=["contains"]', module=f"test_{module}")
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("-rs")
    out = output_of(result)
    assert result.ret == pytest.ExitCode.OK, out
    result.assert_outcomes(passed=1, skipped=4)
    skipped = [line for line in result.outlines if line.startswith("SKIPPED [1] test_")]
    assert len(skipped) == 4, out
    assert all("LLM eval: pass --llm-eval to run" in line for line in skipped), out
    for name, _ in broken.values():
        assert name not in out, out
    assert "error" not in out.lower(), out


def test_without_the_flag_the_suite_is_one_skipped_item(pytester, write_jsonl):
    write_jsonl("support.jsonl", [GOOD_ROW, {**GOOD_ROW, "id": "ok-2"}])
    write_suite(pytester, 'dataset="support.jsonl", target=answer')
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, output_of(result)
    result.stdout.fnmatch_lines(["test_suite.py::test_support[[]llm-eval-off]", "1 test collected*"])
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1] test_suite.py*: LLM eval: pass --llm-eval to run*"])
