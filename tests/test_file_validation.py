"""Every file the plugin reads back is validated: baselines, response cache entries, prompt
log lines and reports (merge, llm-eval-check). Bad content is the kind's error naming the
file (and line, case, field), never another exception and never a verdict.

Structure-aware fuzzing (hypothesis): start from a valid document of each kind, replace
one node anywhere in it with arbitrary JSON (wrong shapes, NaN, Infinity, huge or negative
numbers, deep nesting) or drop a key, and read the file back.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import PLUGINS_OFF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmeval.cli import main as llm_eval_main
from pytest_llmeval.errors import BaselineError, CacheError, LLMEvalError
from pytest_llmeval.gate.baseline import Baseline, BaselineCase, BaselineStore
from pytest_llmeval.prompts import PromptError, PromptLog
from pytest_llmeval.providers.cache import ResponseCache, cache_key
from pytest_llmeval.reporting.merge import merge_reports
from pytest_llmeval.reporting.report import ReportError, load_report
from pytest_llmeval.validation import MAX_DEPTH

SUITE = "test_eval.py::test_support"
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**20, max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([7.5, -1.0, 1.0000001, 0.5, 1e308]),
    st.text(max_size=8),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, prefix + (index,))


def _mutate(doc, data):
    """A copy of ``doc`` with one node replaced by arbitrary JSON, or one key dropped."""
    doc = json.loads(json.dumps(doc))
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    return doc


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# --------------------------------------------------------------------------- baselines


def _baseline_doc() -> dict:
    baseline = Baseline(SUITE, "data.jsonl", "sha256:ab", {
        "c1": BaselineCase.of("h1", {"contains": [1.0], "f1": [0.25, 0.5]}, {"input_tokens": 10, "output_tokens": 3}),
        "c2": BaselineCase.of("h2", {"contains": [0.0], "f1": [0.125, 0.0]}),
    }, "0.1.0", {"written_at": "2026-01-01T00:00:00+00:00"}, prompts={"answer": ["abc"]})
    return json.loads(baseline.render())


@FUZZ
@given(data=st.data())
def test_fuzzed_baselines_load_or_are_a_corrupt_baseline_naming_the_file(tmp_path, data):
    store = BaselineStore(tmp_path)
    path = store.path_for(SUITE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_mutate(_baseline_doc(), data)))
    try:
        baseline = store.load(SUITE)
    except BaselineError as exc:
        assert str(exc).startswith(str(path)) and "corrupt baseline" in str(exc)
        return
    for case in baseline.cases.values():
        assert all(0.0 <= v <= 1.0 for values in case.scores.values() for v in values)
        assert all(values for values in case.scores.values())


@FUZZ
@given(data=st.data())
def test_the_fast_baseline_check_never_accepts_what_the_schema_refuses(data):
    from pytest_llmeval.validation import _baseline_ok, _validator

    doc = _mutate(_baseline_doc(), data)
    if _baseline_ok(doc):
        assert not list(_validator("baseline").iter_errors(doc))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["cases"]["c1"].update(scores=[1.0]), ":10: corrupt baseline (not a valid baseline: case 'c1' at cases/c1/scores: [1.0] is not of type 'object')"),
    (lambda d: d.update(cases=[]), "at cases: [] is not of type 'object'"),
    (lambda d: d["cases"]["c2"]["scores"].update(contains=[7.5]), ":11: corrupt baseline (not a valid baseline: case 'c2' at cases/c2/scores/contains/0: 7.5 is greater than the maximum of 1"),
    (lambda d: d["cases"]["c2"]["scores"].update(contains=[float("nan")]), "case 'c2' at cases/c2/scores/contains/0: NaN is not a finite number"),
    (lambda d: d["cases"]["c2"]["scores"].update(contains=[float("inf")]), "at cases/c2/scores/contains/0: Infinity is not a finite number"),
    (lambda d: d["cases"]["c2"].update(usage={"input_tokens": -3}), "at cases/c2/usage/input_tokens: -3 is less than the minimum of 0"),
])
def test_each_corrupt_baseline_names_file_line_case_and_field(tmp_path, edit, message):
    store = BaselineStore(tmp_path)
    store.write(Baseline(SUITE, "d", "f", {c: BaselineCase.of(c, {"contains": [1.0]}) for c in ("c1", "c2")}))
    path = store.path_for(SUITE)
    doc = json.loads(path.read_text())
    edit(doc)
    # One case per line, as the store writes it, so the line is the case's.
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        for case_id, entry in doc["cases"].items() if isinstance(doc["cases"], dict) else ():
            if line.lstrip().startswith(json.dumps(case_id) + ":"):
                lines[number] = f"    {json.dumps(case_id)}: {json.dumps(entry)}" + ("," if line.endswith(",") else "")
    text = "\n".join(lines) if isinstance(doc["cases"], dict) else json.dumps(doc)
    path.write_text(text)
    with pytest.raises(BaselineError) as info:
        store.load(SUITE)
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_deeply_nested_baseline_is_a_corrupt_baseline(tmp_path):
    store = BaselineStore(tmp_path)
    path = store.path_for(SUITE)
    path.parent.mkdir(parents=True)
    for depth in (MAX_DEPTH + 1, 100_000):
        path.write_text('{"format": "pytest-llmeval-baseline/1", "x": ' + _deep(depth) + "}")
        with pytest.raises(BaselineError, match=f"corrupt baseline .*nested more than {MAX_DEPTH} levels deep"):
            store.load(SUITE)


BAD_BASELINES = {
    "scores_a_list": lambda d: d["cases"]["c0"].update(scores=[1.0]),
    "cases_a_list": lambda d: d.update(cases=[d["cases"]["c0"]]),
    "score_above_one": lambda d: d["cases"]["c0"]["scores"].update(contains=[7.5]),
    "score_nan": lambda d: d["cases"]["c0"]["scores"].update(contains=[float("nan")]),
    "score_infinite": lambda d: d["cases"]["c0"]["scores"].update(contains=[float("inf")]),
    "deep_nesting": lambda d: d["provenance"].update(x=json.loads(_deep(500))),
}


@pytest.mark.parametrize("variant", sorted(BAD_BASELINES))
def test_a_run_against_an_untrustworthy_baseline_fails_its_baseline_gate(pytester, write_jsonl, variant):
    write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"n": i}, "expected": "yes"} for i in range(4)])
    pytester.makepyfile(test_eval="""
        import pytest
        @pytest.mark.llm_eval(dataset="data.jsonl", target=lambda n: "yes", scorers=["contains"])
        def test_support(llm_case, llm_eval):
            pass
    """)
    assert pytester.runpytest("--llm-eval-update").ret == 0
    path = pytester.path / ".llm-eval/test_eval.py/test_support.json"
    doc = json.loads(path.read_text())
    BAD_BASELINES[variant](doc)
    path.write_text(json.dumps(doc) if variant != "deep_nesting" else json.dumps(doc).replace('"x": [', '"x": [' + "[" * 200, 1)
                    .replace("]}", "]" * 200 + "]}", 1))
    result = pytester.runpytest("--llm-eval", "--llm-eval-report=r.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED*llm_eval_gate?baseline?*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    doc = json.loads((pytester.path / "r.json").read_text())
    assert doc["verdict"] == "fail" and doc["suites"][0]["verdict"] == "fail"
    error = doc["suites"][0]["baseline"]["error"]
    assert error.startswith(str(path)) and "corrupt baseline" in error


# --------------------------------------------------------------------------- cache entries

REQUEST = {"provider": "openai", "base_url": "http://127.0.0.1:1/v1", "query": {}, "repeat": 0,
           "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}
RESPONSE = {"choices": [{"message": {"role": "assistant", "content": "yes"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            "model": "m"}


@FUZZ
@given(data=st.data())
def test_fuzzed_cache_entries_replay_or_are_a_cache_error_naming_the_file(tmp_path, data):
    key = cache_key(REQUEST)
    cache = ResponseCache(tmp_path, "read")
    path = cache.path_for(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_mutate({"key": key, "request": REQUEST, "response": RESPONSE}, data)))
    try:
        response = cache.lookup(key)
    except CacheError as exc:
        assert str(exc).startswith(str(path)) and "corrupt cache entry" in str(exc)
        return
    # What replays is an answer the client can read.
    message = response["choices"][0]["message"]
    assert message.get("content") is None or isinstance(message["content"], str)


# --------------------------------------------------------------------------- prompt log

ENTRY = {"name": "answer", "version": "abc123", "label": "v1", "suite": SUITE, "verdict": "pass",
         "metrics": {"contains": 0.75}, "at": "2026-01-01T00:00:00+00:00", "commit": None}


@FUZZ
@given(data=st.data())
def test_fuzzed_prompt_log_lines_read_or_are_a_prompt_error_naming_the_line(tmp_path, data):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(ENTRY) + "\n" + json.dumps(_mutate(ENTRY, data)) + "\n")
    try:
        entries = PromptLog(path).entries()
    except PromptError as exc:
        assert str(exc).startswith(f"{path}:2: corrupt prompt log line")
        return
    assert all(isinstance(e["name"], str) and isinstance(e["version"], str) and isinstance(e["at"], str) for e in entries)


@pytest.mark.parametrize(("line", "message"), [
    ("{oops", ":2: corrupt prompt log line (not JSON"),
    ("[1, 2]", ":2: corrupt prompt log line (not a valid entry: at (top level): [1, 2] is not of type 'object')"),
    ('{"name": "a"}', "'version' is a required property"),
    ('{"name": 5, "version": "v", "at": "t"}', "at name: 5 is not of type 'string'"),
    ('{"name": "a", "version": "v", "at": "t", "metrics": {"m": NaN}}', "at metrics/m: NaN is not a finite number"),
    ('{"name": "a", "version": "v", "at": "t", "metrics": {"m": 3}}', "at metrics/m: 3 is greater than the maximum of 1"),
    ('{"name": "a", "name": "b", "version": "v", "at": "t"}', "key 'name' is given twice"),
    (_deep(100_000), "nested more than 100 levels deep"),
])
def test_llm_eval_prompts_names_the_bad_line_instead_of_a_traceback(tmp_path, capsys, line, message):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(ENTRY) + "\n" + line + "\n")
    assert llm_eval_main(["prompts", "--dir", str(tmp_path / "none"), "--log", str(log)]) == 2
    err = capsys.readouterr().err
    assert f"{log}:2: corrupt prompt log line" in err and message in err and "Traceback" not in err


# --------------------------------------------------------------------------- reports


@pytest.fixture(scope="module")
def report_doc(tmp_path_factory) -> dict:
    """A real report of a small run with a baseline (so every block is filled in)."""
    root = tmp_path_factory.mktemp("report-fuzz")
    (root / "data.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "inputs": {"n": i}, "expected": "yes"}) + "\n" for i in range(4)))
    (root / "test_eval.py").write_text(
        "import pytest\n"
        "@pytest.mark.llm_eval(dataset='data.jsonl', target=lambda n: 'yes' if n else 'no', scorers=['contains'],"
        " thresholds={'contains': 0.5})\n"
        "def test_support(llm_case, llm_eval):\n    pass\n")
    for args in (["--llm-eval-update"], ["--llm-eval", "--llm-eval-report=r.json"]):
        subprocess.run([sys.executable, "-m", "pytest", *PLUGINS_OFF, "-p", "no:cacheprovider", "-p", "no:xdist", *args], cwd=root,
                       check=True, capture_output=True)
    return json.loads((root / "r.json").read_text())


@FUZZ
@given(data=st.data())
def test_fuzzed_reports_load_and_merge_or_are_a_report_error(tmp_path, report_doc, data):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_mutate(report_doc, data)))
    try:
        doc = load_report(path)
    except ReportError as exc:
        assert str(exc).startswith(str(path))
        return
    try:
        merge_reports([(str(path), doc)], BaselineStore(tmp_path / "no-baselines"))
    except LLMEvalError:
        pass  # a report that validates but cannot be merged (e.g. incomplete) is refused by name


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["suites"][0]["cases"][0]["scores"].update(contains=5.0),
     "suite test_eval.py::test_support case 'c0' at suites/0/cases/0/scores/contains: 5.0 is greater than the maximum of 1"),
    (lambda d: d["run"]["options"].update(alpha=0), "at run/options/alpha: 0 is less than or equal to the minimum of 0"),
    (lambda d: d["suites"][0]["cases"][0].update(latency_ms=-1), "at suites/0/cases/0/latency_ms: -1 is less than the minimum of 0"),
])
def test_reports_out_of_range_are_refused_by_merge(tmp_path, report_doc, capsys, monkeypatch, edit, message):
    doc = json.loads(json.dumps(report_doc))
    edit(doc)
    (tmp_path / "r.json").write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path)
    assert llm_eval_main(["merge", "r.json", "-o", "out.json"]) == 2
    err = capsys.readouterr().err
    assert "r.json: not a valid pytest-llmeval report" in err and message in err
    assert not (tmp_path / "out.json").exists()


def test_a_100k_deep_report_is_refused_by_merge_and_check(tmp_path, capsys, monkeypatch):
    from pytest_llmeval.check.cli import main as check_main

    (tmp_path / "r.json").write_text('{"schema_version": 1, "run": ' + _deep(100_000) + "}")
    (tmp_path / "llmops-config.yaml").write_text("eval_gates:\n  thresholds: {contains: 0.5}\n")
    monkeypatch.chdir(tmp_path)
    assert llm_eval_main(["merge", "r.json", "-o", "out.json"]) == 2
    assert "r.json: invalid JSON: nested more than 100 levels deep" in capsys.readouterr().err
    code = check_main(["llmops-config.yaml", "--report", "r.json"])
    out = capsys.readouterr()
    assert code == 2 and "nested more than 100 levels deep" in out.out + out.err and "RecursionError" not in out.out + out.err


def test_merge_refuses_to_overwrite_one_of_its_inputs(tmp_path, report_doc, capsys, monkeypatch):
    (tmp_path / "r.json").write_text(json.dumps(report_doc))
    monkeypatch.chdir(tmp_path)
    assert llm_eval_main(["merge", "r.json", "-o", "./r.json"]) == 2
    assert "the output is one of the reports to merge" in capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text()) == report_doc


def test_validation_imports_nothing_heavy():
    code = "import sys, pytest_llmeval.validation\nprint(sorted(m for m in ('jsonschema', 'yaml', 'pytest') if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
