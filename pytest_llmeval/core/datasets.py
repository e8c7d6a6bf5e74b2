"""Golden datasets: load JSONL, YAML or CSV files into validated, ordered cases.

Loading is deterministic (file order), so xdist workers collect identical items. Every
problem is a :class:`~pytest_llmeval.errors.DatasetError` naming the file, the line and
the field. PyYAML is imported only when a YAML file is read.

A dataset means what the user wrote: a key given twice in one JSON object or YAML mapping
is an error, JSON rows are strict (no NaN, nesting bounded), and in YAML a plain scalar
that YAML 1.1 would change (``yes``, ``010``, ``1.10``, ...; see
:mod:`~pytest_llmeval.core.yamlrows`) is kept as the written text in ``id``, ``expected``,
``context`` and ``tags``, read as a boolean in ``must_pass``, and refused in ``inputs``
and ``metadata`` (whose types only the app knows) with a hint to quote it.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import DatasetError
from ..models import Case
from ..validation import JSONProblem, loads_strict
from .yamlrows import Written, yaml_rows

__all__ = ["Dataset", "ROW_FIELDS", "SUFFIXES", "is_remote", "load_dataset", "load_remote_dataset", "remote_fingerprint"]

ROW_FIELDS = ("id", "inputs", "expected", "expected_answer", "context", "tags", "must_pass", "metadata")
SUFFIXES = (".jsonl", ".yaml", ".yml", ".csv")
_CSV_TRUE = {"1", "true", "yes", "y"}
_CSV_FALSE = {"", "0", "false", "no", "n"}


@dataclass(frozen=True)
class Dataset:
    """The cases of one dataset file, in file order, with a fingerprint of its bytes."""

    path: Path
    name: str
    cases: tuple[Case, ...]
    fingerprint: str


def load_dataset(path: str | Path, name: str | None = None) -> Dataset:
    """Read and validate a dataset file; raise DatasetError on any problem.

    ``name`` is how messages and ``Dataset.name`` refer to the file (default: the path).
    """
    path = Path(path)
    shown = name or str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DatasetError(shown, None, None, f"unsupported dataset format {suffix or '(none)'!r}; use one of {', '.join(SUFFIXES)}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(shown, None, None, "dataset file not found") from None
    except OSError as exc:
        raise DatasetError(shown, None, None, f"cannot read dataset: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(shown, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None

    if suffix == ".jsonl":
        rows = _jsonl_rows(shown, text)
    elif suffix == ".csv":
        rows = _csv_rows(shown, text)
    else:
        rows = yaml_rows(shown, text)

    cases: list[Case] = []
    first_line: dict[str, int | None] = {}
    for line, row in rows:
        case = _case_from_row(shown, line, row)
        if case.id in first_line:
            seen = first_line[case.id]
            raise DatasetError(shown, line, "id", f"duplicate id {case.id!r} (first used on line {seen})")
        first_line[case.id] = line
        cases.append(case)
    if not cases:
        raise DatasetError(shown, None, None, "dataset is empty: no rows")
    return Dataset(path=path, name=shown, cases=tuple(cases), fingerprint="sha256:" + hashlib.sha256(data).hexdigest())


def _jsonl_rows(shown: str, text: str) -> Iterator[tuple[int, Any]]:
    # Split on "\n" only: str.splitlines() also splits on U+2028 and friends, which are
    # legal raw characters inside JSON strings.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield number, loads_strict(raw)
        except JSONProblem as exc:
            field = exc.key if exc.key is not None else "/".join(map(str, exc.path)) or None
            raise DatasetError(shown, number, field, exc.problem.replace("not JSON: ", "invalid JSON: ", 1)) from None


def _csv_rows(shown: str, text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    end_of_previous = 0
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        seen: dict[str, str] = {}
        for column in header:
            key = _csv_key(column)
            if key in seen:
                raise DatasetError(shown, 1, column, f"column repeats {seen[key]!r} (both fill the same field)")
            seen[key] = column
        end_of_previous = reader.line_num
        for record in reader:
            line = end_of_previous + 1
            end_of_previous = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise DatasetError(shown, line, None, f"expected {len(header)} columns as in the header, found {len(record)}")
            yield line, _csv_row(shown, line, dict(zip(header, record)))
    except csv.Error as exc:
        raise DatasetError(shown, end_of_previous + 1, None, f"invalid CSV: {exc}") from None


def _csv_key(column: str) -> str:
    """Which row field a CSV column fills (``inputs.x`` and ``x`` fill the same)."""
    if column in ("id", "expected", "expected_answer", "context", "tags", "must_pass") or column.startswith("metadata."):
        return column
    return "inputs." + column.removeprefix("inputs.")


def _csv_row(shown: str, line: int, record: dict[str, str]) -> dict[str, Any]:
    """CSV columns: reserved names are row fields; ``metadata.x`` goes to metadata; the rest
    (``inputs.x`` or plain ``x``) are inputs. ``tags`` are separated by ``;``."""
    row: dict[str, Any] = {"inputs": {}, "metadata": {}}
    for column, value in record.items():
        if column in ("id", "expected", "expected_answer", "context"):
            if value != "" or column == "id":
                row[column] = value
        elif column == "tags":
            row["tags"] = [tag.strip() for tag in value.split(";") if tag.strip()]
        elif column == "must_pass":
            flag = value.strip().lower()
            if flag not in _CSV_TRUE | _CSV_FALSE:
                raise DatasetError(shown, line, "must_pass", f"expected true/false, got {value!r}")
            row["must_pass"] = flag in _CSV_TRUE
        elif column.startswith("metadata."):
            row["metadata"][column.removeprefix("metadata.")] = value
        else:
            row["inputs"][column.removeprefix("inputs.")] = value
    return row


def _case_from_row(shown: str, line: int, row: Any) -> Case:
    if not isinstance(row, dict):
        raise DatasetError(shown, line, None, f"a row must be a mapping, got {type(row).__name__}")
    unknown = [key for key in row if key not in ROW_FIELDS]
    if unknown:
        key = str(unknown[0])
        hint = difflib.get_close_matches(key, ROW_FIELDS, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; known fields: {', '.join(ROW_FIELDS)}"
        raise DatasetError(shown, line, key, "unknown field" + suggestion)

    _refuse_written(shown, row.get("inputs"), "inputs")
    _refuse_written(shown, row.get("metadata"), "metadata")
    must_pass = row.get("must_pass", False)
    if isinstance(must_pass, Written) and isinstance(must_pass.value, bool):
        must_pass = must_pass.value  # a boolean is expected: yes/no/on/off mean what YAML 1.1 says
    row = {key: _as_text(value) for key, value in row.items()}

    case_id = row.get("id")
    if case_id is None or case_id == "":
        raise DatasetError(shown, line, "id", "missing: every row needs a stable, unique id")
    if isinstance(case_id, bool) or not isinstance(case_id, (str, int)):
        raise DatasetError(shown, line, "id", f"must be a string or integer, got {type(case_id).__name__}")

    if "inputs" not in row:
        raise DatasetError(shown, line, "inputs", "missing: every row needs an inputs mapping")
    inputs = row["inputs"]
    if not isinstance(inputs, dict):
        raise DatasetError(shown, line, "inputs", f"must be a mapping, got {type(inputs).__name__}")
    bad_key = next((key for key in inputs if not isinstance(key, str) or not key.isidentifier()), None)
    if bad_key is not None:
        raise DatasetError(shown, line, "inputs", f"key {bad_key!r} is not a valid Python identifier (inputs are passed as keyword arguments)")

    if "expected" in row and "expected_answer" in row:
        raise DatasetError(shown, line, "expected_answer", "give either expected or its alias expected_answer, not both")
    expected = row.get("expected", row.get("expected_answer"))

    context = row.get("context")
    if context is not None and not isinstance(context, str) and not _is_str_list(context):
        raise DatasetError(shown, line, "context", "must be a string or a list of strings")

    tags = row.get("tags", [])
    if not _is_str_list(tags):
        raise DatasetError(shown, line, "tags", "must be a list of strings")

    if not isinstance(must_pass, bool):
        raise DatasetError(shown, line, "must_pass", f"must be true or false, got {must_pass!r}")

    metadata = row.get("metadata", {})
    if not isinstance(metadata, dict):
        raise DatasetError(shown, line, "metadata", f"must be a mapping, got {type(metadata).__name__}")

    return Case(
        id=str(case_id),
        inputs=inputs,
        expected=expected,
        context=context,
        tags=tuple(tags),
        must_pass=must_pass,
        metadata=metadata,
        line=line,
    )


def _refuse_written(shown: str, value: Any, where: str) -> None:
    """A YAML scalar YAML 1.1 would change, in a field whose type only the app knows: refused."""
    if isinstance(value, Written):
        raise DatasetError(shown, value.line, where, f"unquoted {str(value)!r} is read by YAML 1.1 as {value.meaning()}; "
                                                     f"quote it ('{value}') if you mean the text, or write the value plainly "
                                                     "(true/false, 8, 1.1) if you mean that")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_written(shown, item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_written(shown, item, f"{where}[{index}]")


def _as_text(value: Any) -> Any:
    """Written scalars as plain ``str`` (where a string is expected, the text wins)."""
    if isinstance(value, Written):
        return str(value)
    if isinstance(value, dict):
        return {key: _as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    return value


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# -- remote datasets: s3://, gs://, https://, file:// through fsspec -------------------------

REMOTE_SCHEMES = ("s3", "gs", "gcs", "http", "https", "file", "az", "abfs")
MAX_REMOTE_BYTES = 512 * 1024 * 1024
_REMOTE_HINT = {"s3": "pytest-llmeval[s3]", "gs": "pytest-llmeval[gcs]", "gcs": "pytest-llmeval[gcs]"}


def is_remote(dataset: object) -> bool:
    """Whether a marker's ``dataset=`` is a URL fsspec should read (``scheme://...``)."""
    return isinstance(dataset, str) and dataset.split("://", 1)[0].lower() in REMOTE_SCHEMES and "://" in dataset


def _remote_suffix(uri: str) -> str:
    path = uri.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
    return Path(path).suffix.lower()


def _open_remote(uri: str) -> tuple[Any, str]:
    """(filesystem, path) for ``uri``; DatasetError naming the extra when fsspec or the
    scheme's backend is not installed."""
    scheme = uri.split("://", 1)[0].lower()
    try:
        import fsspec
    except ImportError:
        raise DatasetError(uri, None, None, f"remote datasets need fsspec: pip install '{_REMOTE_HINT.get(scheme, 'pytest-llmeval[s3]')}'") from None
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise DatasetError(uri, None, None, f"cannot open {scheme}:// ({exc}); install {_REMOTE_HINT.get(scheme, 'its fsspec backend')}") from None
    return fs, path


def _version_token(fs: Any, path: str) -> str | None:
    """What the store says identifies this version of the object (ETag, generation, md5),
    when it says anything; None: download to know."""
    try:
        fs.invalidate_cache(path)
        info = fs.info(path)
    except Exception:  # the download below reports a missing object with its own message
        return None
    for key in ("ETag", "etag", "md5Hash", "generation", "checksum", "mtime"):
        value = info.get(key)
        if value:
            return f"{key}:{value}:{info.get('size')}"
    return None


def remote_fingerprint(uri: str) -> str:
    """``sha256:<hex>`` of the remote object's bytes (downloaded); DatasetError otherwise."""
    return "sha256:" + hashlib.sha256(_fetch(uri)).hexdigest()


def _fetch(uri: str) -> bytes:
    fs, path = _open_remote(uri)
    try:
        with fs.open(path, "rb") as handle:
            data = handle.read(MAX_REMOTE_BYTES + 1)
    except FileNotFoundError:
        raise DatasetError(uri, None, None, "remote dataset not found") from None
    except PermissionError as exc:
        raise DatasetError(uri, None, None, f"access denied: {exc}") from None
    except Exception as exc:  # network and backend errors of any fsspec implementation
        raise DatasetError(uri, None, None, f"cannot download the dataset: {type(exc).__name__}: {exc}") from None
    if len(data) > MAX_REMOTE_BYTES:
        raise DatasetError(uri, None, None, f"larger than {MAX_REMOTE_BYTES // 2**20} MiB")
    return data


def load_remote_dataset(uri: str, cache_dir: Path) -> Dataset:
    """Read a dataset from object storage or a URL through fsspec, keeping a copy under
    ``cache_dir`` named by its content fingerprint.

    When the store names the object's version (S3/GCS ETag, a file's mtime and size) and
    the cache holds the copy fetched for that version, the copy is read without a
    download; otherwise the object is downloaded. ``Dataset.name`` is the URI and
    ``Dataset.fingerprint`` the sha256 of the bytes, as for a local file, so reports and
    baselines pin the exact version that ran. Credentials and endpoints come from the
    backend's usual configuration (``AWS_*`` variables, ``AWS_ENDPOINT_URL_S3``,
    ``FSSPEC_S3`` JSON...); none is ever written to the cache or a report.
    Raises DatasetError naming the URI."""
    suffix = _remote_suffix(uri)
    if suffix not in SUFFIXES:
        raise DatasetError(uri, None, None, f"unsupported dataset format {suffix or '(none)'!r}; use one of {', '.join(SUFFIXES)}")
    cache_dir = Path(cache_dir)
    index_path = cache_dir / ("index-" + hashlib.sha256(uri.encode("utf-8")).hexdigest()[:24] + ".json")
    fs, path = _open_remote(uri)
    token = _version_token(fs, path)
    cached = _cached_copy(index_path, uri, token, cache_dir, suffix)
    if cached is not None:
        return load_dataset(cached, name=uri)
    data = _fetch(uri)
    fingerprint = "sha256:" + hashlib.sha256(data).hexdigest()
    copy = cache_dir / f"{fingerprint.split(':', 1)[1]}{suffix}"
    from ..fileio import write_atomic

    try:
        text = data.decode("utf-8")  # written back byte for byte (write_atomic translates no newline)
    except UnicodeDecodeError as exc:
        raise DatasetError(uri, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    write_atomic(copy, text)  # also replaces a copy that no longer matches its name
    if token is not None:
        write_atomic(index_path, json.dumps({"uri": uri, "token": token, "fingerprint": fingerprint}))
    return load_dataset(copy, name=uri)


def _cached_copy(index_path: Path, uri: str, token: str | None, cache_dir: Path, suffix: str) -> Path | None:
    if token is None:
        return None
    try:
        entry = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("uri") != uri or entry.get("token") != token:
        return None
    fingerprint = str(entry.get("fingerprint", ""))
    copy = cache_dir / f"{fingerprint.removeprefix('sha256:')}{suffix}"
    try:  # a copy that was tampered with or truncated is not used
        ok = "sha256:" + hashlib.sha256(copy.read_bytes()).hexdigest() == fingerprint
    except OSError:
        return None
    return copy if ok else None
