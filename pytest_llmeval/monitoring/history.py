"""The run-history store: every complete run as one row, with per-suite and per-metric
aggregates (per-case scores optional), in any database SQLAlchemy reaches.

The default store is a SQLite file, ``.llm-eval/history.sqlite`` under the project's
root (no server); teams pass a database URL (``postgresql://user@host/db``, run through
psycopg 3) so that ephemeral CI runners share one history. The schema is created and
upgraded by the Alembic migrations shipped in ``migrations/``, run on connect under a
lock (a file lock beside a SQLite file, an advisory lock on PostgreSQL), so two runs
meeting a fresh database migrate it once. The migrations are the schema's only
definition: the store reflects the tables from the migrated database rather than declaring
them again, so code and database cannot drift apart (a schema change is a new revision).
Each run is written in one transaction: concurrent writers lose nothing.

SQLAlchemy, Alembic and filelock (extra ``history``) are imported when a store is
opened, never at import time of this module.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple

from ..errors import LLMEvalError

__all__ = [
    "DEFAULT_HISTORY_FILE",
    "INSTALL_HINT",
    "HistoryError",
    "HistoryStore",
    "LatencyPoint",
    "MetricPoint",
    "SCHEMA_REVISION",
    "TABLES",
    "history_url",
    "redact_url",
]

DEFAULT_HISTORY_FILE = ".llm-eval/history.sqlite"
INSTALL_HINT = "the run history needs the history extra: pip install 'pytest-llmeval[history]'"
SCHEMA_REVISION = "0001"  # the newest migration in migrations/versions
REPORT_SCHEMA_VERSIONS = (1, 2)  # the report schemas this store reads (2 adds variants: one suite entry each)
VERSION_TABLE = "llm_eval_alembic_version"
_MIGRATION_LOCK_KEY = 7_351_824_190  # pg_advisory_lock key of the migrations
_WRITE_ATTEMPTS = 8


class HistoryError(LLMEvalError):
    """The history database cannot be opened, migrated, written or read."""


@dataclass(frozen=True)
class MetricPoint:
    """One run's mean of one (suite, metric); ``at`` is the run's start (naive UTC)."""

    at: datetime
    run_id: int
    suite_id: str
    metric: str
    mean: float | None
    n: int
    baseline_mean: float | None
    verdict: str


@dataclass(frozen=True)
class LatencyPoint:
    """One run's p95 latency of one suite's app calls (ms)."""

    at: datetime
    run_id: int
    suite_id: str
    latency_p95_ms: float | None


def history_url(value: str, root: Path) -> str:
    """A SQLAlchemy URL from an option value: a URL as it is (``postgresql://`` gets the
    psycopg 3 driver), anything else a SQLite file path relative to ``root``; an empty
    value is the default file ``.llm-eval/history.sqlite``."""
    value = value.strip()
    if "://" in value:
        scheme, rest = value.split("://", 1)
        if scheme in ("postgresql", "postgres"):
            return "postgresql+psycopg://" + rest
        return value
    path = Path(value or DEFAULT_HISTORY_FILE)
    if not path.is_absolute():
        path = root / path
    return "sqlite:///" + path.as_posix()


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages (secrets never in any output)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    creds, _, host = rest.partition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


TABLES = ("llm_eval_runs", "llm_eval_suite_results", "llm_eval_metric_results", "llm_eval_case_scores")


class _Tables(NamedTuple):
    """The history tables as the migrated database has them (reflected, never redeclared:
    the migrations in ``migrations/versions`` are the schema's one definition)."""

    runs: Any
    suites: Any
    metrics: Any
    cases: Any


def _utc(text: str | None) -> datetime | None:
    """An ISO timestamp as naive UTC (how every backend stores it alike)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise HistoryError(f"report: run timestamp {text!r} is not ISO 8601") from None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


class HistoryStore(AbstractContextManager):
    """An open history database. ``HistoryStore(url)`` connects and migrates the schema to
    the newest revision; :meth:`record` writes a run; :meth:`metric_points` and
    :meth:`latency_points` read the trend. Raises :class:`HistoryError` (the URL in its
    messages has the password masked)."""

    def __init__(self, url: str) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise HistoryError(INSTALL_HINT) from None
        self.url = url
        self.shown = redact_url(url)
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Concurrent writers wait for the file lock instead of failing at once.
            kwargs["connect_args"] = {"timeout": 60}
        try:
            self.engine = sa.create_engine(url, **kwargs)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise HistoryError(f"history {self.shown}: {exc}") from None
        self._sa = sa
        self.migrate()
        self.tables = self._reflect()

    def close(self) -> None:
        self.engine.dispose()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the schema to the newest shipped migration (once, under a lock)."""
        try:
            from alembic import command
            from alembic.config import Config
        except ImportError:
            raise HistoryError(INSTALL_HINT) from None
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
        sa = self._sa
        try:
            with self._migration_lock(), self.engine.connect() as connection:
                if self.engine.dialect.name == "postgresql":
                    connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                    connection.commit()
                try:
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                    connection.commit()
                finally:
                    if self.engine.dialect.name == "postgresql":
                        connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                        connection.commit()
        except sa.exc.SQLAlchemyError as exc:
            raise HistoryError(f"history {self.shown}: cannot migrate the schema: {_short(exc)}") from None
        except Exception as exc:  # alembic: a database at a revision this version does not ship
            if type(exc).__module__.startswith("alembic"):
                raise HistoryError(f"history {self.shown}: {exc} (written by a newer pytest-llmeval?)") from None
            raise

    def _reflect(self) -> _Tables:
        """The tables of the migrated schema, read from the database."""
        sa = self._sa
        md = sa.MetaData()
        try:
            md.reflect(bind=self.engine, only=TABLES)
        except sa.exc.SQLAlchemyError as exc:
            raise HistoryError(f"history {self.shown}: cannot read the schema: {_short(exc)}") from None
        return _Tables(*(md.tables[name] for name in TABLES))

    def _migration_lock(self) -> Any:
        import contextlib

        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return contextlib.nullcontext()
        from filelock import FileLock

        return FileLock(database + ".migrate.lock", timeout=120)

    def revision(self) -> str | None:
        """The schema revision the database is at."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()

    # -- writing -------------------------------------------------------------------

    def record(self, doc: Mapping[str, Any], *, cases: bool = False) -> int:
        """Write a complete, judged report (one run); return the run's row id.

        ``cases`` also stores every case's scores. Raises HistoryError for a report that
        is incomplete, deferred (a shard) or of another schema version, or when the
        database refuses the write. SQLite writers that find the file locked retry."""
        if doc.get("schema_version") not in REPORT_SCHEMA_VERSIONS:
            raise HistoryError(f"report schema version {doc.get('schema_version')!r}: the history reads versions "
                               f"{', '.join(map(str, REPORT_SCHEMA_VERSIONS))}")
        if not doc.get("complete") or doc.get("verdict") not in ("pass", "fail"):
            raise HistoryError(f"only complete, judged runs are recorded (this run: {doc.get('verdict')})")
        runs, suites, metrics, case_scores = self.tables
        sa = self._sa
        run = doc["run"]
        git = run.get("git") or {}
        row = {
            "run_uid": uuid.uuid4().hex,
            "started_at": _utc(run.get("started_at")),
            "finished_at": _utc(run.get("finished_at")),
            "recorded_at": datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0),
            "verdict": doc["verdict"],
            "git_commit": git.get("commit"),
            "git_branch": git.get("branch"),
            "plugin_version": (run.get("versions") or {}).get("pytest_llmeval", ""),
            "report_schema_version": doc["schema_version"],
            "options": json.dumps(run.get("options") or {}, sort_keys=True),
        }
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self.engine.begin() as connection:
                    run_id = connection.execute(sa.insert(runs).values(**row).returning(runs.c.id)).scalar_one()
                    suite_rows, metric_rows, case_rows = _rows(doc, run_id, cases)
                    for table, rows in ((suites, suite_rows), (metrics, metric_rows), (case_scores, case_rows)):
                        if rows:
                            connection.execute(sa.insert(table), rows)
                return int(run_id)
            except sa.exc.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _WRITE_ATTEMPTS - 1:
                    raise HistoryError(f"history {self.shown}: cannot record the run: {_short(exc)}") from None
                time.sleep(0.05 * 2 ** attempt)
            except sa.exc.SQLAlchemyError as exc:
                raise HistoryError(f"history {self.shown}: cannot record the run: {_short(exc)}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reading -------------------------------------------------------------------

    def metric_points(self, *, suite: str | None = None, metric: str | None = None,
                      since: datetime | None = None) -> list[MetricPoint]:
        """Per run, suite and metric: the mean, oldest first."""
        runs, metrics = self.tables.runs, self.tables.metrics
        sa = self._sa
        query = (sa.select(runs.c.started_at, runs.c.id, metrics.c.suite_id, metrics.c.metric, metrics.c.mean,
                           metrics.c.n, metrics.c.baseline_mean, metrics.c.verdict)
                 .join(metrics, metrics.c.run_id == runs.c.id))
        if suite is not None:
            query = query.where(metrics.c.suite_id == suite)
        if metric is not None:
            query = query.where(metrics.c.metric == metric)
        if since is not None:
            query = query.where(runs.c.started_at >= since)
        query = query.order_by(runs.c.started_at, runs.c.id, metrics.c.suite_id, metrics.c.metric)
        return [MetricPoint(*row) for row in self._read(query)]

    def latency_points(self, *, suite: str | None = None, since: datetime | None = None) -> list[LatencyPoint]:
        """Per run and suite: the p95 latency of the app calls, oldest first."""
        runs, suites = self.tables.runs, self.tables.suites
        sa = self._sa
        query = (sa.select(runs.c.started_at, runs.c.id, suites.c.suite_id, suites.c.latency_p95_ms)
                 .join(suites, suites.c.run_id == runs.c.id))
        if suite is not None:
            query = query.where(suites.c.suite_id == suite)
        if since is not None:
            query = query.where(runs.c.started_at >= since)
        return [LatencyPoint(*row) for row in self._read(query.order_by(runs.c.started_at, runs.c.id, suites.c.suite_id))]

    def names(self) -> tuple[list[str], list[str]]:
        """(suite ids, metric names) the history has recorded, sorted."""
        metrics = self.tables.metrics
        sa = self._sa
        suites = sorted({row[0] for row in self._read(sa.select(sa.distinct(self.tables.suites.c.suite_id)))})
        names = sorted({row[0] for row in self._read(sa.select(sa.distinct(metrics.c.metric)))})
        return suites, names

    def run_count(self) -> int:
        runs = self.tables.runs
        sa = self._sa
        return int(next(iter(self._read(sa.select(sa.func.count()).select_from(runs))))[0])

    def case_scores(self, run_id: int) -> list[tuple[str, str, int, str, float]]:
        """(suite, case, repeat, metric, score) of one run recorded with ``cases=True``."""
        cases = self.tables.cases
        sa = self._sa
        query = (sa.select(cases.c.suite_id, cases.c.case_id, cases.c.repeat, cases.c.metric, cases.c.score)
                 .where(cases.c.run_id == run_id).order_by(cases.c.id))
        return [tuple(row) for row in self._read(query)]  # type: ignore[misc]

    def _read(self, query: Any) -> Iterator[Any]:
        sa = self._sa
        try:
            with self.engine.connect() as connection:
                return iter(connection.execute(query).all())
        except sa.exc.SQLAlchemyError as exc:
            raise HistoryError(f"history {self.shown}: cannot read: {_short(exc)}") from None


def _rows(doc: Mapping[str, Any], run_id: int, with_cases: bool) -> tuple[list[dict], list[dict], list[dict]]:
    suite_rows, metric_rows, case_rows = [], [], []
    for suite in doc.get("suites", []):
        usage = suite.get("usage") or {}
        suite_rows.append({
            "run_id": run_id, "suite_id": suite["suite_id"], "dataset": suite["dataset"],
            "fingerprint": suite["fingerprint"], "verdict": suite.get("verdict"), "cases_run": suite["cases_run"],
            "errors": len(suite.get("errors", [])), "failed_cases": len(suite.get("failed_cases", [])),
            "models": json.dumps(list(suite.get("models", []))), "cost_total": usage.get("cost_total"),
            "cost_mean": usage.get("cost_mean"), "latency_p50_ms": usage.get("latency_p50_ms"),
            "latency_p95_ms": usage.get("latency_p95_ms"), "error_rate": usage.get("error_rate"),
        })
        for metric in suite.get("metrics", []):
            metric_rows.append({
                "run_id": run_id, "suite_id": suite["suite_id"], "metric": metric["name"], "n": metric["n"],
                "mean": metric.get("mean"), "ci_low": metric.get("ci_low"), "ci_high": metric.get("ci_high"),
                "threshold": metric.get("threshold"), "baseline_mean": metric.get("baseline_mean"),
                "change": metric.get("change"), "p_value": metric.get("p_value"), "verdict": metric["verdict"],
                "regressed": bool(metric.get("regressed")),
            })
        if with_cases:
            for case in suite.get("cases", []):
                for name, score in sorted(case.get("scores", {}).items()):
                    if score is not None:
                        case_rows.append({"run_id": run_id, "suite_id": suite["suite_id"], "case_id": case["case_id"],
                                          "repeat": case.get("repeat", 0), "metric": name, "score": float(score)})
    return suite_rows, metric_rows, case_rows


def _short(exc: BaseException) -> str:
    """A database error's first line (SQLAlchemy appends the statement and a link)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
