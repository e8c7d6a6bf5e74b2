"""The baseline store: deterministic files, atomic writes, merges, and corrupt files."""

from __future__ import annotations

import json
import os

import pytest

from pytest_llmeval.errors import BaselineError
from pytest_llmeval.gate.baseline import FORMAT, Baseline, BaselineCase, BaselineStore

SUITE = "tests/test_support.py::test_support"


def make(cases: dict[str, float], provenance: dict | None = None) -> Baseline:
    return Baseline(
        SUITE, "evals/support.jsonl", "sha256:abc",
        {case_id: BaselineCase.of(f"h{case_id}", {"contains": [value], "rouge": [value / 3, value / 7]}) for case_id, value in cases.items()},
        "0.1.0", provenance or {"written_at": "2026-01-01T00:00:00+00:00"},
    )


def test_path_mirrors_the_test_tree(tmp_path):
    store = BaselineStore(tmp_path / ".llm-eval", tmp_path)
    assert store.path_for(SUITE) == tmp_path / ".llm-eval/tests/test_support.py/test_support.json"
    assert store.path_for("t.py::TestA::test_b") == tmp_path / ".llm-eval/t.py/TestA.test_b.json"
    assert store.display(SUITE) == ".llm-eval/tests/test_support.py/test_support.json"


def test_file_is_valid_json_sorted_and_one_case_per_line(tmp_path):
    store = BaselineStore(tmp_path)
    store.write(make({"b": 1.0, "a": 0.0, "c": 1.0}))
    text = store.path_for(SUITE).read_text()
    data = json.loads(text)
    assert data["format"] == FORMAT and list(data["cases"]) == ["a", "b", "c"]
    case_lines = [line for line in text.splitlines() if '"scores"' in line]
    assert len(case_lines) == 3 and case_lines[0].strip().startswith('"a": ')
    assert data["cases"]["b"]["scores"]["rouge"] == [0.333333, 0.142857]  # 6 decimals


def test_round_trip_and_unchanged_content_keeps_the_bytes(tmp_path):
    store = BaselineStore(tmp_path)
    assert store.write(make({"a": 1.0, "b": 0.5}))
    path = store.path_for(SUITE)
    first = path.read_bytes()
    assert store.load(SUITE) == make({"a": 1.0, "b": 0.5})
    # Same scores, new provenance: not rewritten.
    assert not store.write(make({"a": 1.0, "b": 0.5}, {"written_at": "2027-01-01T00:00:00+00:00"}))
    assert path.read_bytes() == first
    assert store.write(make({"a": 1.0, "b": 0.0}))
    assert path.read_bytes() != first


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    store = BaselineStore(tmp_path)
    store.write(make({"a": 1.0}))
    before = store.path_for(SUITE).read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write(make({"a": 0.0}))
    assert store.path_for(SUITE).read_bytes() == before
    assert [p.name for p in store.path_for(SUITE).parent.iterdir()] == ["test_support.json"]


def test_missing_file_is_none(tmp_path):
    assert BaselineStore(tmp_path).load(SUITE) is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", ":1: corrupt baseline (not JSON"),
        ('{"format": "something-else/9"}', "unknown format"),
        (json.dumps({"format": FORMAT, "suite": "other.py::t", "dataset": "d", "fingerprint": "f", "cases": {}}), "belongs to suite"),
        (json.dumps({"format": FORMAT, "suite": SUITE, "dataset": "d", "fingerprint": "f"}), "'cases'"),
        (json.dumps({"format": FORMAT, "suite": SUITE, "dataset": "d", "fingerprint": "f", "cases": {"a": {"hash": "h", "scores": {"m": ["x"]}}}}), "case 'a' at cases/a/scores/m/0: 'x' is not of type 'number'"),
        (json.dumps({"format": FORMAT, "suite": SUITE, "dataset": "d", "fingerprint": "f", "cases": {"a": {"hash": "h", "scores": {"m": []}}}}), "case 'a' at cases/a/scores/m: [] should be non-empty"),
    ],
)
def test_corrupt_baselines_are_errors_naming_the_file(tmp_path, content, message):
    store = BaselineStore(tmp_path)
    path = store.path_for(SUITE)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(BaselineError) as info:
        store.load(SUITE)
    assert str(path) in str(info.value) and message in str(info.value) and "corrupt baseline" in str(info.value)


def test_merge_updates_and_prunes_only_when_told(tmp_path):
    old = make({"a": 1.0, "b": 1.0, "c": 1.0})
    update = {"b": BaselineCase.of("hb", {"contains": [0.0]})}
    merged = old.merged(update, keep=None)
    assert set(merged) == {"a", "b", "c"} and merged["b"].scores["contains"] == (0.0,)
    assert set(old.merged(update, keep={"a", "b"})) == {"a", "b"}


def test_case_means_average_repeats():
    assert BaselineCase.of("h", {"m": [1, 0, 0, 1]}).means() == {"m": 0.5}
