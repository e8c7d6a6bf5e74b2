"""The run-history store (SQLite and PostgreSQL): schema by migration, what a run
records, refusals, concurrent writers, and ``--llm-eval-history`` in real pytest runs."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from history_docs import SUITE, judged_report
from pytest_llmeval.monitoring.history import (SCHEMA_REVISION, TABLES, VERSION_TABLE, HistoryError, HistoryStore,
                                               history_url, redact_url)

TESTS = Path(__file__).parent


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return history_url("history.sqlite", tmp_path)
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def baseline_dir(tmp_path) -> Path:
    folder = tmp_path / "baselines"
    judged_report(folder, date(2026, 1, 1), 170, update=True)
    return folder


def test_the_schema_is_the_shipped_migrations_and_the_store_reads_its_tables_from_the_database(db_url):
    import sqlalchemy as sa

    with HistoryStore(db_url) as store:
        assert store.revision() == SCHEMA_REVISION
        assert sorted(sa.inspect(store.engine).get_table_names()) == sorted([*TABLES, VERSION_TABLE])
        assert [table.name for table in store.tables] == list(TABLES)
        metrics = store.tables.metrics
        assert isinstance(metrics.c.mean.type, sa.Float) and isinstance(metrics.c.regressed.type, sa.Boolean)
        assert [fk.target_fullname for fk in metrics.c.run_id.foreign_keys] == ["llm_eval_runs.id"]
    with HistoryStore(db_url) as again:  # reopening migrates nothing and keeps the revision
        assert again.revision() == SCHEMA_REVISION


def test_a_run_is_one_row_with_suite_and_metric_aggregates_and_optional_case_scores(db_url, baseline_dir):
    doc = judged_report(baseline_dir, date(2026, 1, 2), 160, latency_ms=950.0)
    with HistoryStore(db_url) as store:
        plain = store.record(doc)
        with_cases = store.record(doc, cases=True)
        assert store.run_count() == 2
        points = store.metric_points()
        assert [(p.run_id, p.suite_id, p.metric, p.mean, p.baseline_mean, p.n, p.verdict) for p in points] == [
            (plain, SUITE, "accuracy", 0.8, 0.85, 200, "fail"), (with_cases, SUITE, "accuracy", 0.8, 0.85, 200, "fail")]
        assert points[0].at.isoformat() == "2026-01-02T12:00:00"
        assert [p.latency_p95_ms for p in store.latency_points()] == [950.0, 950.0]
        assert store.case_scores(plain) == []
        scores = store.case_scores(with_cases)
        assert len(scores) == 200 and scores[0] == (SUITE, "c0000", 0, "accuracy", 1.0)
        assert sum(s[4] for s in scores) == 160
        assert store.metric_points(metric="nope") == [] and store.metric_points(suite="other") == []


def test_incomplete_runs_and_other_schema_versions_are_refused(db_url, baseline_dir):
    doc = judged_report(baseline_dir, date(2026, 1, 2), 170)
    with HistoryStore(db_url) as store:
        with pytest.raises(HistoryError, match="only complete, judged runs"):
            store.record({**doc, "complete": False, "verdict": "incomplete"})
        with pytest.raises(HistoryError, match="only complete, judged runs"):
            store.record({**doc, "verdict": "deferred"})
        with pytest.raises(HistoryError, match="schema version 99"):
            store.record({**doc, "schema_version": 99})
        assert store.run_count() == 0


def test_messages_never_show_the_database_password():
    assert redact_url("postgresql+psycopg://ci:s3cret@db:5432/evals") == "postgresql+psycopg://ci:***@db:5432/evals"
    assert history_url("postgresql://u@h/db", Path("/x")) == "postgresql+psycopg://u@h/db"
    assert history_url("", Path("/proj")) == "sqlite:////proj/.llm-eval/history.sqlite"
    with pytest.raises(HistoryError) as info:
        HistoryStore("postgresql+psycopg://ci:s3cret@127.0.0.1:1/evals")
    assert "s3cret" not in str(info.value) and "ci:***@127.0.0.1:1" in str(info.value)


def test_a_database_written_by_a_newer_version_is_refused(tmp_path):
    url = history_url("h.sqlite", tmp_path)
    HistoryStore(url).close()
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0999'"))
    engine.dispose()
    with pytest.raises(HistoryError, match="0999.*newer pytest-llmeval"):
        HistoryStore(url)


WRITER = """
import sys
sys.path.insert(0, {tests!r})
from datetime import date
from pathlib import Path
from history_docs import judged_report
from pytest_llmeval.monitoring.history import HistoryStore

doc = judged_report(Path({baselines!r}), date(2026, 1, 3), 165)
print("ready", flush=True)
sys.stdin.readline()  # start together
with HistoryStore({url!r}) as store:
    for _ in range({runs}):
        store.record(doc, cases=True)
print("done", flush=True)
"""


def test_two_concurrent_writers_lose_nothing(db_url, baseline_dir):
    """Two processes (two CI jobs) meet a fresh database: both migrate it, both write 15
    runs with 200 case scores each at the same time; all 30 runs and 6,000 scores land."""
    runs = 15
    script = WRITER.format(tests=str(TESTS), baselines=str(baseline_dir), url=db_url, runs=runs)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "done"
    with HistoryStore(db_url) as store:
        assert store.run_count() == 2 * runs
        points = store.metric_points()
        assert len(points) == 2 * runs and len({p.run_id for p in points}) == 2 * runs
        assert all(len(store.case_scores(p.run_id)) == 200 for p in points)


# -- the plugin option ----------------------------------------------------------------


@pytest.fixture
def eval_project(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": f"q{i}", "inputs": {"q": "x"}, "expected": "yes" if i % 5 else "no"}
                               for i in range(20)])
    pytester.makepyfile(test_eval="""
        import pytest

        def answer(q):
            return "yes"

        @pytest.mark.llm_eval(dataset="data.jsonl", target=answer, scorers=["exact_match"])
        def test_support(llm_case, llm_eval):
            pass
    """)
    return pytester


@pytest.mark.parametrize("dist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_llm_eval_history_records_a_complete_run_in_the_default_sqlite_file(eval_project, dist):
    result = eval_project.runpytest("--llm-eval", "--llm-eval-history", *dist)
    assert result.ret == 0
    db = eval_project.path / ".llm-eval" / "history.sqlite"
    result.stdout.fnmatch_lines([f"history: recorded run 1 in sqlite:///{db.as_posix()}"])
    with HistoryStore(history_url("", eval_project.path)) as store:
        (point,) = store.metric_points()
    assert (point.suite_id, point.metric, point.mean, point.n) == ("test_eval.py::test_support", "exact_match", 0.8, 20)


@pytest.mark.parametrize("path", ["test_eval.py", "."])
def test_a_test_path_after_the_bare_history_flag_is_refused_not_taken_for_the_database(eval_project, path):
    result = eval_project.runpytest("--llm-eval", "--llm-eval-history", path)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--llm-eval-history {path}: that is a test path, not a history database; write "
                                 "--llm-eval-history=PATH*"])
    assert not list(eval_project.path.glob("*.lock")) and not (eval_project.path / ".llm-eval").exists()
    assert eval_project.runpytest("--llm-eval", path, "--llm-eval-history").ret == 0  # flag last: the default file


def test_ini_history_url_with_case_scores(eval_project, tmp_path):
    db = tmp_path / "team.sqlite"
    eval_project.makeini(f"[pytest]\nllm_eval_history = sqlite:///{db.as_posix()}\nllm_eval_history_cases = true\n")
    assert eval_project.runpytest("--llm-eval").ret == 0
    with HistoryStore(f"sqlite:///{db.as_posix()}") as store:
        (point,) = store.metric_points()
        assert len(store.case_scores(point.run_id)) == 20


def test_an_interrupted_run_is_not_history(eval_project):
    eval_project.makeconftest("""
        def pytest_runtest_call(item):
            assert not item.name.endswith("[q3]"), "stop here"
    """)
    result = eval_project.runpytest("--llm-eval", "--llm-eval-history", "-x")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*run incomplete*", "history: run not recorded (incomplete runs are not history)"])
    with HistoryStore(history_url("", eval_project.path)) as store:
        assert store.run_count() == 0


def test_shards_are_not_history_but_their_merge_is_recorded_by_llm_eval_merge(eval_project, capsys, monkeypatch):
    from pytest_llmeval.cli import main

    for i in (1, 2):
        result = eval_project.runpytest("--llm-eval", "--llm-eval-history", f"--llm-eval-shard={i}/2",
                                        f"--llm-eval-report=shard{i}.json")
        assert result.ret == 0
        result.stdout.fnmatch_lines(["history: run not recorded (deferred runs are not history); "
                                     "record the merge: llm-eval merge --history"])
    monkeypatch.chdir(eval_project.path)
    assert main(["merge", "shard1.json", "shard2.json", "-o", "merged.json", "--history", "--html", "merged.html"]) == 0
    db = eval_project.path / ".llm-eval" / "history.sqlite"
    assert f"history: recorded run 1 in sqlite:///{db.as_posix()}" in capsys.readouterr().out
    with HistoryStore(history_url("", eval_project.path)) as store:
        (point,) = store.metric_points()
    assert (point.suite_id, point.metric, point.mean, point.n) == ("test_eval.py::test_support", "exact_match", 0.8, 20)
    assert 'data-tab="trends"' in (eval_project.path / "merged.html").read_text(encoding="utf-8")
    assert main(["merge", "shard1.json", "shard2.json", "-o", "again.json", "--history", "nosuchdialect://x"]) == 2
    assert "history nosuchdialect://x" in capsys.readouterr().err and not (eval_project.path / "again.json").exists()
    # The project's ini keys are read as pytest reads them: "1" stores the case scores, a
    # value that is not a boolean is refused naming the file and key.
    pyproject = eval_project.path / "pyproject.toml"
    pyproject.write_text('[tool.pytest.ini_options]\nllm_eval_history_cases = "maybe"\n', encoding="utf-8")
    assert main(["merge", "shard1.json", "shard2.json", "-o", "again.json", "--history"]) == 2
    assert f"{pyproject}: ini llm_eval_history_cases: 'maybe' is not a boolean" in capsys.readouterr().err
    pyproject.write_text('[tool.pytest.ini_options]\nllm_eval_history_cases = "1"\n', encoding="utf-8")
    assert main(["merge", "shard1.json", "shard2.json", "-o", "again.json", "--history"]) == 0
    with HistoryStore(history_url("", eval_project.path)) as store:
        assert store.run_count() == 2 and len(store.case_scores(2)) == 20


def test_an_unusable_history_database_stops_the_run_before_any_case(eval_project):
    result = eval_project.runpytest("--llm-eval", "--llm-eval-history=nosuchdialect://x/y")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*history nosuchdialect://x/y*"])


def test_start_up_on_an_unrelated_suite_imports_no_monitoring_library(pytester):
    pytester.makeconftest("""
        import sys
        def pytest_unconfigure(config):
            libs = {"sqlalchemy", "alembic", "psycopg", "filelock", "fsspec", "s3fs", "pyarrow", "matplotlib", "moto"}
            print("MONITORING-MODULES:", sorted(m for m in sys.modules if m.split(".")[0] in libs
                                                or m.startswith("pytest_llmeval.monitoring")))
    """)
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess("-q", "-s", "-p", "no:xdist")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["MONITORING-MODULES: []"])
