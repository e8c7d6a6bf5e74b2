"""Request logs as the shadow comparison and the cost monitor read them: JSONL (one JSON
object per line) or Parquet (through pyarrow, extra ``parquet``), one record per request.

Every problem is a :class:`LogError` naming the file, the line (the row for Parquet) and
the field. Fields the readers share:

* ``request_id`` (string or integer), ``timestamp`` (ISO 8601, or seconds since the epoch),
* ``model``, ``feature``, ``segment`` (strings),
* token usage as ``usage: {input_tokens, output_tokens}`` or top-level ``input_tokens`` /
  ``output_tokens`` (OpenAI's ``prompt_tokens`` / ``completion_tokens`` are accepted too),
* ``cost`` (USD, optional: when logged it wins over the price table).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import LLMEvalError

__all__ = ["LogError", "LogRecord", "read_log", "tokens_of"]

MAX_LINE_CHARS = 10_000_000
SUFFIXES = (".jsonl", ".ndjson", ".parquet")


class LogError(LLMEvalError):
    """A request log that cannot be read: ``str(error)`` reads ``path:line: field: problem``."""

    def __init__(self, path: str, line: int | None, field: str | None, problem: str) -> None:
        self.path, self.line, self.field, self.problem = path, line, field, problem
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {problem if field is None else f'field {field!r}: {problem}'}")


@dataclass(frozen=True)
class LogRecord:
    """One logged request: where it was read from, and its fields."""

    path: str
    line: int
    data: Mapping[str, Any]

    def error(self, field: str | None, problem: str) -> LogError:
        return LogError(self.path, self.line, field, problem)

    def text(self, field: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.data.get(field)
        if value is None:
            if required:
                raise self.error(field, "missing")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(field, f"must be a string, got {type(value).__name__}")
        return str(value)

    def number(self, field: str, *, minimum: float = 0.0) -> float | None:
        value = self.data.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
            raise self.error(field, f"must be a finite number >= {minimum:g}, got {value!r}")
        return float(value)

    def timestamp(self, field: str = "timestamp", *, required: bool = True) -> datetime | None:
        """Naive UTC."""
        value = self.data.get(field)
        if value is None:
            if required:
                raise self.error(field, "missing: every request needs a timestamp")
            return None
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except (ValueError, OverflowError, OSError):
            raise self.error(field, f"not an ISO 8601 time or epoch seconds: {value!r}") from None
        return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def tokens_of(record: LogRecord) -> tuple[int, int] | None:
    """(input, output) tokens from ``usage`` or the top level; None when not logged."""
    usage = record.data.get("usage")
    source = usage if isinstance(usage, Mapping) else record.data
    if usage is not None and not isinstance(usage, Mapping):
        raise record.error("usage", f"must be a mapping, got {type(usage).__name__}")
    prefix = "usage." if source is usage else ""
    counts = []
    for names in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
        name = next((n for n in names if source.get(n) is not None), None)
        if name is None:
            counts.append(None)
            continue
        value = source[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise record.error(prefix + name, f"must be a non-negative integer, got {value!r}")
        counts.append(value)
    if counts == [None, None]:
        return None
    return counts[0] or 0, counts[1] or 0


def read_log(path: str | Path) -> Iterator[LogRecord]:
    """The records of a JSONL or Parquet log, in file order."""
    path = Path(path)
    shown = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise LogError(shown, None, None, f"unsupported log format {suffix or '(none)'!r}; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise LogError(shown, None, None, "log file not found")
    if suffix == ".parquet":
        yield from _parquet(path, shown)
        return
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            for number, raw in enumerate(handle, start=1):
                if len(raw) > MAX_LINE_CHARS:
                    raise LogError(shown, number, None, f"line longer than {MAX_LINE_CHARS:,} characters")
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise LogError(shown, number, None, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
                if not isinstance(data, dict):
                    raise LogError(shown, number, None, f"a record must be a JSON object, got {type(data).__name__}")
                yield LogRecord(shown, number, data)
    except UnicodeDecodeError as exc:
        raise LogError(shown, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LogError(shown, None, None, f"cannot read log: {exc.strerror or exc}") from None


def _parquet(path: Path, shown: str) -> Iterator[LogRecord]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise LogError(shown, None, None, "reading Parquet needs pyarrow: pip install 'pytest-llmeval[parquet]'") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a broken file
        raise LogError(shown, None, None, f"not a readable Parquet file: {exc}") from None
    row = 0
    for batch in parquet.iter_batches(batch_size=10_000):
        for data in batch.to_pylist():
            row += 1
            yield LogRecord(shown, row, data)
