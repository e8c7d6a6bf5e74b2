"""The prompt registry: versions, safe templates, and prompt versions carried by runs."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import threading
import time

import pytest
from conftest import junit_cases

import pytest_llmeval.prompts as prompts_module
from pytest_llmeval.cli import main as llm_eval_main
from pytest_llmeval.prompts import PromptError, PromptLog, PromptRegistry, prompt_version, recording_prompts


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_versions_are_the_first_12_hex_of_sha256_of_the_template(tmp_path):
    write(tmp_path, "support.yaml", "label: v1\ntemplate: 'Q: {question}'\nmetadata: {owner: team-a}\n")
    write(tmp_path, "plain.txt", "Say {word}.")
    registry = PromptRegistry(tmp_path)
    support = registry.get("support")
    assert support.version == hashlib.sha256(b"Q: {question}").hexdigest()[:12] == prompt_version("Q: {question}")
    assert (support.label, support.metadata, support.fields) == ("v1", {"owner": "team-a"}, ("question",))
    assert registry.get("plain").render(word="hi") == "Say hi."
    assert registry.names() == ["plain", "support"]


@pytest.mark.parametrize("template, shown", [
    ("{inputs.__class__}", "{inputs.__class__}"),
    ("{x[0]}", "{x[0]}"),
    ("{}", "{}"),
    ("{0}", "{0}"),
])
def test_templates_may_only_name_variables(tmp_path, template, shown):
    write(tmp_path, "bad.txt", template)
    with pytest.raises(PromptError, match=rf"bad.txt: template field {shown!s}".replace("[", r"\[").replace("{", r"\{").replace("}", r"\}")) as info:
        PromptRegistry(tmp_path).get("bad")
    assert "a template is not code" in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("template: [1, 2]\n", "needs a 'template:' string"),
    ("template: 'x'\ncolour: red\n", "unknown keys ['colour']"),
    ("template: 'x\n", "invalid YAML"),
    ("template: '{a:{b}}'\n", "nested field"),
])
def test_bad_prompt_files_name_the_file(tmp_path, text, message):
    write(tmp_path, "p.yaml", text)
    with pytest.raises(PromptError, match="p.yaml") as info:
        PromptRegistry(tmp_path).get("p")
    assert message in str(info.value)


def test_rendering_checks_variables_and_records_the_version(tmp_path):
    write(tmp_path, "greet.txt", "Hello {name}, about {topic}")
    prompt = PromptRegistry(tmp_path).get("greet")
    with pytest.raises(PromptError, match="needs topic"):
        prompt.render(name="Ada")
    used: dict[str, str] = {}
    with recording_prompts(used):
        assert prompt.render(name="Ada", topic="refunds") == "Hello Ada, about refunds"  # a variable may be called 'name'
    assert used == {"greet": prompt.version}
    with pytest.raises(PromptError, match="unknown prompt 'gret'; known prompts: greet"):
        PromptRegistry(tmp_path).get("gret")


def test_prompt_log_is_append_only_and_corruption_is_reported(tmp_path):
    log = PromptLog(tmp_path / "log.jsonl")
    log.append([{"name": "a", "version": "1", "at": "2026-01-01T00:00:00+00:00"}])
    log.append([{"name": "a", "version": "2", "at": "2026-01-02T00:00:00+00:00"}])
    assert [e["version"] for e in log.entries()] == ["1", "2"]
    (tmp_path / "log.jsonl").write_text((tmp_path / "log.jsonl").read_text() + "{oops\n")
    with pytest.raises(PromptError, match="log.jsonl:3: corrupt prompt log line"):
        log.entries()


APP = """
import pytest
from pytest_llmeval.prompts import render

def app(question):
    return render("answer", question=question)

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_support(llm_case, llm_eval):
    pass
"""


def test_runs_record_prompt_versions_and_notice_a_change(pytester, write_jsonl, monkeypatch, capsys):
    write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"question": f"q{i}"}, "expected": "yes"} for i in range(5)])
    pytester.makepyfile(test_eval=APP)
    write(pytester.path / "prompts", "answer.yaml", "label: first\ntemplate: 'yes to {question}'\n")
    v1 = prompt_version("yes to {question}")
    assert pytester.runpytest("--llm-eval-update").ret == 0
    baseline = json.loads((pytester.path / ".llm-eval/test_eval.py/test_support.json").read_text())
    assert baseline["prompts"] == {"answer": [v1]}

    write(pytester.path / "prompts", "answer.yaml", "label: second\ntemplate: 'yes, {question}'\n")
    v2 = prompt_version("yes, {question}")
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml", "--llm-eval-report=r.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*note: prompt answer {v1} -> {v2} since the baseline*"])
    assert junit_cases(pytester.path / "junit.xml")["test_support[c0]"]["properties"]["llm_eval.prompt.answer"] == v2
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["suites"][0]["prompts"] == {"answer": [v2]}
    assert report["suites"][0]["baseline"]["prompts"] == {"answer": [v1]}
    assert report["suites"][0]["cases"][0]["prompts"] == {"answer": v2}

    assert pytester.runpytest("--llm-eval-update").ret == 0
    log = PromptLog(pytester.path / ".llm-eval/prompt-log.jsonl").entries()
    assert [(e["version"], e["label"], e["verdict"]) for e in log] == [(v1, "first", "pass"), (v2, "second", "pass")]
    assert log[1]["metrics"] == {"contains": 1.0}

    monkeypatch.chdir(pytester.path)
    capsys.readouterr()  # drop what the pytester runs printed
    assert llm_eval_main(["prompts"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"answer {v1}  first seen ") and "last blessed: pass" in out[0]
    assert out[1].startswith(f"answer {v2}") and out[1].endswith("[current, label second]")


def test_a_template_with_attribute_access_fails_the_case_clearly(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": "c0", "inputs": {"question": "q"}, "expected": "yes"}])
    pytester.makepyfile(test_eval=APP)
    write(pytester.path / "prompts", "answer.txt", "{question.__class__}")
    result = pytester.runpytest("--llm-eval", "-rE")
    result.stdout.fnmatch_lines(["*template field {question.__class__} is not allowed*"])


def test_concurrent_first_renders_read_the_folder_once(tmp_path, monkeypatch):
    """Sixteen threads asking at once for a prompt whose file is slow to read: one read."""
    write(tmp_path, "big.txt", "answer {question}")
    reads = []
    real = prompts_module.load_prompt

    def slow_load(path):
        reads.append(path.name)
        time.sleep(0.2)  # a 20 MB file: long enough for every thread to arrive meanwhile
        return real(path)

    monkeypatch.setattr(prompts_module, "load_prompt", slow_load)
    registry = PromptRegistry(tmp_path)
    barrier = threading.Barrier(16)

    def render(i):
        barrier.wait()
        return registry.render("big", question=i)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        outputs = list(pool.map(render, range(16)))
    assert outputs == [f"answer {i}" for i in range(16)]
    assert reads == ["big.txt"]


COUNTING_CONFTEST = """
import time
import pytest_llmeval.prompts as prompts

READS = []
_real = prompts.load_prompt

def _counting(path):
    READS.append(path.name)
    time.sleep(0.2)
    return _real(path)

prompts.load_prompt = _counting

def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        print("PROMPT-READS:", sorted(READS))
"""


def test_a_run_at_concurrency_16_reads_the_prompt_folder_once(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"question": f"q{i}"}, "expected": "yes"} for i in range(48)])
    pytester.makepyfile(test_eval=APP)
    pytester.makeconftest(COUNTING_CONFTEST)
    write(pytester.path / "prompts", "answer.yaml", "template: 'yes to {question}'\n")
    write(pytester.path / "prompts", "other.txt", "unused {x}")
    result = pytester.runpytest_subprocess("--llm-eval", "--llm-eval-concurrency=16", "-s", "-p", "no:xdist")
    result.assert_outcomes(passed=49)
    result.stdout.fnmatch_lines(["PROMPT-READS: ['answer.yaml', 'other.txt']"])
