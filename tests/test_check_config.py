"""llm-eval-check on configs alone: the broken-config corpus, the schema, the output
formats, pinned prompts, safe loading, and a fuzz test that the checker never crashes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmeval.check import CODES, ConfigLoadError, check, check_loaded, parse_config
from pytest_llmeval.check.cli import main
from pytest_llmeval.prompts import PromptLog, prompt_version

CORPUS = Path(__file__).parent / "check_corpus"
DOCS = Path(__file__).parent.parent / "docs" / "checker.md"
PACKAGE = Path(__file__).parent.parent / "pytest_llmeval" / "check"

SEED = """\
prompt_registry: {storage: prompts/, approval_required: true, auto_eval: true}
eval_gates:
  golden_dataset: evals/golden-v3.jsonl
  thresholds: {correctness: 0.85, faithfulness: 0.90, relevance: 0.80}
  min_examples: 500
  block_on_regression: true
routing:
  primary:   {provider: anthropic, model: claude-sonnet-4, weight: 0.8}
  secondary: {provider: openai, model: gpt-4o, weight: 0.2}
  fallback:  {provider: openai, model: gpt-4o-mini}
  health_check_interval_seconds: 30
  failover_after_consecutive_failures: 3
monitoring:
  quality_alert_threshold: -0.05
  latency_p95_alert_ms: 5000
  daily_cost_budget: 500.0
  cost_alert_threshold: 0.80
"""

FULL = SEED + """\
traffic: {requests_per_day: 100000}
canary:
  stages: [5, 25, 50, 100]
  min_stage_duration_minutes: 60
  rollback: {max_quality_drop: 0.05, max_error_rate: 0.02, max_latency_p95_ms: 8000}
  alpha: 0.05
  power: 0.8
feature_flags:
  new_retriever:
    enabled: true
    description: hybrid retrieval
    rules:
      - {segment: internal, percentage: 100}
      - {segment: beta, percentage: 25}
  legacy_prompt: {enabled: false}
"""

FULL_DATA = yaml.safe_load(FULL)

_EXPECT = re.compile(r"^# expect: (.+)$")


def expectations(path: Path) -> list[tuple[str, int]]:
    """The first line of a corpus file: ``# expect: LEC104 line 9; LEC001 line 12`` (or
    ``unusable line 4``)."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = _EXPECT.match(first)
    assert match, f"{path.name}: the first line must be '# expect: CODE line N[; CODE line N]'"
    out = []
    for part in match.group(1).split(";"):
        code, word, line = part.split()
        assert word == "line"
        out.append((code, int(line)))
    return out


CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))


def test_the_corpus_is_large_and_covers_every_config_code():
    broken = [p for p in CORPUS_FILES if not expectations(p)[0][0] == "unusable"]
    assert len(broken) >= 30
    covered = {code for p in CORPUS_FILES for code, _ in expectations(p)}
    config_codes = {code for code in CODES if code < "LEC602"}
    assert config_codes <= covered, f"codes without a corpus file: {sorted(config_codes - covered)}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.stem for p in CORPUS_FILES])
def test_corpus_file_gives_its_expected_findings(path, capsys):
    expected = expectations(path)
    code = main([str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if expected[0][0] == "unusable":
        assert code == 2
        assert err.startswith(f"llm-eval-check: {path}:{expected[0][1]}: "), err
        with pytest.raises(ConfigLoadError):
            check(path)
        return
    result = check(path)
    found = sorted((f.code, f.line) for f in result.findings)
    assert found == sorted(expected), "\n".join(str(f) for f in result.findings)
    assert code == (1 if result.errors else 0)
    for finding in result.findings:
        assert f"{path}:{finding.line}: {finding.severity} {finding.code}: " in out


def test_the_seed_config_and_a_full_config_have_no_findings(tmp_path):
    for name, text in (("seed.yaml", SEED), ("full.yaml", FULL)):
        (tmp_path / name).write_text(text)
        result = check(tmp_path / name)
        assert result.findings == () and result.exit_code == 0, [str(f) for f in result.findings]


def test_a_routes_list_and_a_fallback_by_name(tmp_path):
    config = SEED.replace("""  primary:   {provider: anthropic, model: claude-sonnet-4, weight: 0.8}
  secondary: {provider: openai, model: gpt-4o, weight: 0.2}
  fallback:  {provider: openai, model: gpt-4o-mini}
""", """  routes:
    - {name: main, provider: anthropic, model: claude-sonnet-4, weight: 0.5}
    - {name: alt, provider: openai, model: gpt-4o, weight: 0.3}
    - {name: cheap, provider: google, model: gemini-2.0-pro, weight: 0.1}
    - {name: tiny, provider: openai, model: gpt-4o-mini, weight: 0.1}
  fallback: alt
""")
    result = check_loaded(parse_config(config, "routes.yaml", tmp_path))
    assert result.findings == ()  # 0.5 + 0.3 + 0.1 + 0.1 sums to 1 within 1e-9 despite float rounding


def test_weights_must_sum_to_one_within_1e_9():
    def findings(second: str) -> list[str]:
        text = SEED.replace("weight: 0.2", f"weight: {second}")
        return [f.code for f in check_loaded(parse_config(text)).findings]

    assert findings("0.2000000000001") == []
    assert findings("0.20000001") == ["LEC102"]


def test_a_single_route_without_weight_gets_all_traffic():
    text = SEED.replace("weight: 0.8", "").replace("  secondary: {provider: openai, model: gpt-4o, weight: 0.2}\n", "")
    assert check_loaded(parse_config(text)).findings == ()


def test_messages_name_the_file_line_key_and_fix():
    text = SEED.replace("block_on_regression", "block_on_regresion").replace("cost_alert_threshold: 0.80", "cost_alert_threshold: 80")
    result = check_loaded(parse_config(text, "ops/llmops.yaml"))
    rendered = [str(f) for f in result.findings]
    assert rendered == [
        "ops/llmops.yaml:6: error LEC001: eval_gates: unknown key 'block_on_regresion'; did you mean "
        "'block_on_regression'? (known keys here: block_on_regression, golden_dataset, golden_dataset_fingerprint, "
        "min_examples, thresholds)",
        "ops/llmops.yaml:17: error LEC502: monitoring.cost_alert_threshold: 80 is outside (0, 1] (a fraction of the "
        "daily budget: 0.8 means alert at 80%)",
    ]
    assert [f.key for f in result.findings] == ["eval_gates.block_on_regresion", "monitoring.cost_alert_threshold"]


def test_json_and_junit_output(tmp_path, capsys):
    path = CORPUS / "lec102_weights_do_not_sum_to_one.yaml"
    assert main([str(path), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ship"] is False and doc["exit_code"] == 1 and doc["errors"] == 1
    [finding] = doc["findings"]
    assert finding["code"] == "LEC102" and finding["line"] == 10 and finding["severity"] == "error"
    assert finding["file"] == str(path) and finding["key"] == "routing.primary.weight"

    out = tmp_path / "check.xml"
    assert main([str(CORPUS / "lec110_named_routes_and_list.yaml"), "--format", "junit", "-o", str(out)]) == 1
    assert "LEC110" in capsys.readouterr().out  # the text form still goes to the log
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite.get("failures") == "1" and suite.get("tests") == "1"
    [case] = root.iter("testcase")
    assert case.find("failure").get("type") == "LEC110" and case.get("line") == "12"

    (tmp_path / "ok.yaml").write_text(SEED)
    assert main([str(tmp_path / "ok.yaml"), "--format", "junit"]) == 0
    root = ET.fromstring(capsys.readouterr().out)
    assert [c.get("name") for c in root.iter("testcase")] == ["config may ship"]

    warn = CORPUS / "lec107_fallback_shares_primary_provider.yaml"
    assert main([str(warn), "--format", "junit"]) == 0  # a warning does not block
    root = ET.fromstring(capsys.readouterr().out)
    [case] = root.iter("testcase")
    assert case.find("failure") is None and "LEC107" in case.find("system-out").text


def test_unusable_input_exits_2_with_the_reason(tmp_path, capsys):
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "config not found" in capsys.readouterr().err
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert main([str(tmp_path / "empty.yaml")]) == 2
    assert "the config is empty" in capsys.readouterr().err
    (tmp_path / "latin.yaml").write_bytes(b"routing: caf\xe9\n")
    assert main([str(tmp_path / "latin.yaml")]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    capsys.readouterr()
    (tmp_path / "seed.yaml").write_text(SEED)
    (tmp_path / "bad.json").write_text("{not json")
    assert main([str(tmp_path / "seed.yaml"), "--report", str(tmp_path / "bad.json")]) == 2
    assert "bad.json:1: not JSON" in capsys.readouterr().err
    (tmp_path / "invalid.json").write_text('{"schema_version": 1}')
    assert main([str(tmp_path / "seed.yaml"), "--report", str(tmp_path / "invalid.json")]) == 2
    assert "not a valid pytest-llmeval report" in capsys.readouterr().err


def test_yaml_is_never_loaded_unsafely(tmp_path, capsys):
    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(SEED + f"traffic: !!python/object/apply:os.system ['touch {marker}']\n")
    assert main([str(config)]) == 2
    assert "unsupported YAML tag" in capsys.readouterr().err
    config.write_text(SEED + f"traffic: {{requests_per_day: !!python/object/apply:os.system ['touch {marker}']}}\n")
    assert main([str(config)]) == 2
    assert not marker.exists()
    source = "\n".join(p.read_text() for p in PACKAGE.glob("*.py"))
    assert "yaml.load(" not in source and "FullLoader" not in source and "UnsafeLoader" not in source


def test_alias_bombs_and_recursive_aliases_are_refused_quickly(tmp_path):
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        bomb.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(ConfigLoadError, match="expands to more than"):
        parse_config("\n".join(bomb) + "\n")
    with pytest.raises(ConfigLoadError, match="contains it"):
        parse_config("routing: &r\n  primary: *r\n")
    with pytest.raises(ConfigLoadError, match="nested too deeply"):
        parse_config("a: " + "[" * 400 + "]" * 400 + "\n")  # past the recursion limit of the composer
    with pytest.raises(ConfigLoadError, match="nested too deeply"):
        parse_config("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 150)))  # past the builder's depth limit


def test_merge_keys_override_without_a_duplicate_finding():
    text = SEED.replace("""  primary:   {provider: anthropic, model: claude-sonnet-4, weight: 0.8}
  secondary: {provider: openai, model: gpt-4o, weight: 0.2}
""", """  primary: &base {provider: anthropic, model: claude-sonnet-4, weight: 0.8}
  secondary:
    <<: *base
    provider: openai
    model: gpt-4o
    weight: 0.2
""")
    config = parse_config(text)
    assert config.data["routing"]["secondary"] == {"provider": "openai", "model": "gpt-4o", "weight": 0.2}
    assert check_loaded(config).findings == ()


def test_every_code_is_documented_and_the_schema_is_shipped():
    docs = DOCS.read_text(encoding="utf-8")
    for code, (severity, _) in CODES.items():
        assert re.search(rf"\|\s*`?{code}`?\s*\|\s*{severity}\s*\|", docs), f"{code} ({severity}) missing from docs/checker.md"
    schema = json.loads((PACKAGE.parent / "schemas" / "llmops-config.schema.json").read_text())
    for section in schema["properties"]:
        assert f"`{section}`" in docs


def test_domain_code_never_imports_pytest_and_imports_yaml_lazily():
    for path in PACKAGE.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+_?pytest\b", source, re.M), path.name
        assert source.startswith('"""'), f"{path.name} needs a module docstring"
        assert "__all__" in source, path.name
    code = ("import sys, pytest_llmeval.check, pytest_llmeval.check.cli, pytest_llmeval.check.canary, "
            "pytest_llmeval.check.crosscheck; print(sorted(m for m in ('yaml', 'jsonschema', 'scipy', 'pytest') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- prompts


def _prompt_project(tmp_path: Path, pins: str) -> Path:
    (tmp_path / "prompts").mkdir(parents=True)
    (tmp_path / "prompts" / "support.yaml").write_text('template: "Answer: {question}"\n')
    config = tmp_path / "llmops-config.yaml"
    config.write_text(SEED.replace("auto_eval: true}", "auto_eval: true,\n  prompts: {" + pins + "}}"))
    return config


def test_pinned_prompt_versions_exist_and_passed(tmp_path):
    current = prompt_version("Answer: {question}")
    old = prompt_version("Old answer: {question}")
    failed = prompt_version("Failed answer: {question}")
    config = _prompt_project(tmp_path, f"support: {current}")
    result = check(config)
    [finding] = result.findings  # current, but never blessed: no passing eval
    assert finding.code == "LEC603" and finding.line == 2 and "no blessed result" in finding.message

    log = PromptLog(tmp_path / ".llm-eval" / "prompt-log.jsonl")
    log.append([
        {"name": "support", "version": old, "suite": "t::s", "verdict": "pass", "metrics": {}, "at": "2026-01-01", "commit": None},
        {"name": "support", "version": current, "suite": "t::s", "verdict": "pass", "metrics": {}, "at": "2026-02-01", "commit": None},
        {"name": "support", "version": failed, "suite": "t::s", "verdict": "fail", "metrics": {}, "at": "2026-02-02", "commit": None},
    ])
    assert check(config).findings == ()

    config = _prompt_project(tmp_path / "b", f"support: {old}")
    result = check(config, prompt_log=log.path)
    assert [f.code for f in result.findings] == ["LEC604"]  # exists in the log, passed, but older than the file
    assert f"now at {current}" in result.findings[0].message

    config = _prompt_project(tmp_path / "c", f"support: {failed}")
    found = {f.code: f for f in check(config, prompt_log=log.path).findings}
    assert sorted(found) == ["LEC603", "LEC604"]
    assert "latest prompt-log entry (t::s at 2026-02-02) is fail" in found["LEC603"].message

    config = _prompt_project(tmp_path / "d", "support: 0123456789ab, greeting: 0123456789ab")
    found = {(f.code, f.key) for f in check(config, prompt_log=log.path).findings}
    assert found == {("LEC602", "prompt_registry.prompts.support"), ("LEC602", "prompt_registry.prompts.greeting")}


def test_an_unreadable_prompt_log_is_a_finding(tmp_path):
    config = _prompt_project(tmp_path, f"support: {prompt_version('Answer: {question}')}")
    (tmp_path / ".llm-eval").mkdir()
    (tmp_path / ".llm-eval" / "prompt-log.jsonl").write_text("{broken\n")
    codes = [f.code for f in check(config).findings]
    assert "LEC605" in codes


# --------------------------------------------------------------------------- fuzz

_KEYS = ["prompt_registry", "eval_gates", "routing", "monitoring", "canary", "feature_flags", "traffic", "primary",
         "secondary", "fallback", "routes", "weight", "provider", "model", "stages", "rules", "segment", "percentage",
         "thresholds", "min_examples", "prompts", "rollback", "enabled", "golden_dataset", "requests_per_day"]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(_KEYS + ["primary", "alt", "100", "0.5", "sha256:00"]),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=8)), children, max_size=6)),
    max_leaves=20,
)


def _mutate(data, path, value):
    """Replace the value at a path of keys (created as needed) in a copy of data."""
    if not path:
        return value
    out = dict(data) if isinstance(data, dict) else {}
    out[path[0]] = _mutate(out.get(path[0]), path[1:], value)
    return out


_paths = st.lists(st.sampled_from(_KEYS), min_size=1, max_size=3)


def _never_crashes(text: str) -> None:
    try:
        config = parse_config(text, "fuzz.yaml")
    except ConfigLoadError as exc:
        assert str(exc).startswith("fuzz.yaml")
        return
    result = check_loaded(config)
    assert result.exit_code in (0, 1)
    for finding in result.findings:
        assert finding.code in CODES and finding.line >= 1 and finding.message


@settings(max_examples=60, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
def test_fuzz_random_structures_give_findings_or_exit_2(value):
    _never_crashes(yaml.safe_dump(value, allow_unicode=True))


@settings(max_examples=60, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_paths, _values), min_size=1, max_size=3))
def test_fuzz_seed_with_random_subtrees_replaced(mutations):
    data = FULL_DATA  # _mutate copies along the path: FULL_DATA itself is never changed
    for path, value in mutations:
        data = _mutate(data, path, value)
    _never_crashes(yaml.safe_dump(data, allow_unicode=True, default_flow_style=False))


@settings(max_examples=200, database=None, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text(text):
    _never_crashes(text)


@settings(max_examples=80, database=None, deadline=None)
@given(st.integers(0, len(FULL) - 1), st.integers(0, 20), st.text(max_size=6))
def test_fuzz_seed_text_edits(start, length, insert):
    _never_crashes(FULL[:start] + insert + FULL[start + length:])


def test_fuzz_through_the_command_line(tmp_path, capsys):
    """The CLI's own path (file reading, rendering) on a few nasty inputs."""
    for index, text in enumerate(["", "\x00", "- 1\n", "routing: [", "a: !!binary aGVsbG8=\n", "? [a]\n: 1\n",
                                  "routing:\n  primary: {weight: .nan, provider: x, model: y}\n",
                                  "eval_gates: {min_examples: 1e400}\nrouting: {routes: [{provider: a, model: b, weight: 1e999}]}\n",
                                  "eval_gates: {min_examples: 100000000000000000000000000000000000000000000000}\nrouting: {}\n"]):
        path = tmp_path / f"c{index}.yaml"
        path.write_text(text)
        for fmt in ("text", "json", "junit"):
            code = main([str(path), "--format", fmt])
            out, err = capsys.readouterr()
            assert code in (0, 1, 2) and "Traceback" not in out + err
            if code != 2 and fmt == "junit":
                ET.fromstring(out)
            if code != 2 and fmt == "json":
                json.loads(out)
