"""A case whose app call kills its xdist worker: the crash is blamed on that case (its
call was in flight, although pytest was running another item), there is no crash loop,
the run is incomplete (no gate, no baseline) and the other cases keep their results."""

from __future__ import annotations

import json

import pytest

APP = """
import asyncio, os, time
import pytest

{define} app(n):
    if n == 3:
        os._exit(3)  # the app takes the whole process down
    {sleep}
    return "yes"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_crash(llm_case, llm_eval):
    assert llm_eval.output == "yes"
"""


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_case_in_flight_is_blamed_once_and_the_run_is_incomplete(pytester, write_jsonl, kind):
    write_jsonl("data.jsonl", [{"id": f"q{n}", "inputs": {"n": n}, "expected": "yes"} for n in range(6)])
    define, sleep = ("async def", "await asyncio.sleep(0.2)") if kind == "async" else ("def", "time.sleep(0.2)")
    pytester.makepyfile(test_crash=APP.format(define=define, sleep=sleep))
    result = pytester.runpytest("--llm-eval-update", "-n", "2", "--llm-eval-report=r.json", "-rA")
    assert result.ret == 1
    out = result.stdout.str()
    assert "maximum crashed workers reached" not in out
    result.stdout.fnmatch_lines(["*case 'q3': the app's call for this case crashed the test process: worker 'gw*' crashed (Not properly terminated)*",
                                 "ERROR test_crash.py::test_crash[[]q3[]]*"])
    for n in (0, 1, 2, 4, 5):
        result.stdout.fnmatch_lines([f"PASSED test_crash.py::test_crash[[]q{n}[]]"])
    assert out.count("FAILED") == 0 and out.count("ERROR test_crash") == 1
    result.stdout.fnmatch_lines(["*llm-eval: run incomplete*", "worker 'gw*' crashed*no verdict is final"])
    assert not (pytester.path / ".llm-eval").exists()
    doc = json.loads((pytester.path / "r.json").read_text())
    assert doc["complete"] is False and "crashed" in doc["run"]["incomplete_reason"]
    cases = {case["case_id"]: case for case in doc["suites"][0]["cases"]}
    assert sorted(cases) == [f"q{n}" for n in range(6)]
    assert (cases["q3"]["outcome"], cases["q3"]["error_kind"]) == ("error", "crash")
    assert all(cases[f"q{n}"]["outcome"] == "passed" for n in (0, 1, 2, 4, 5))
