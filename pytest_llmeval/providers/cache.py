"""Record/replay cache of model responses, as JSON files in a repo-local folder.

This module owns

* :data:`CACHE_MODES` and :func:`parse_cache_mode` -- what ``--llm-eval-cache`` accepts;
* :func:`cache_key` -- the sha256 of the canonical JSON of everything that changes a
  model's answer (the client builds that request dict: provider, base URL, model,
  messages, sampling parameters, tools, repeat index; never headers or API keys);
* :func:`key_url` and :func:`cache_request` -- the request dict of a call as the key sees
  it: a loopback URL (``127.0.0.1``, ``localhost``, ``[::1]``, any port) is written
  ``http://loopback``, so a recording made against a test server on a random port
  replays against the next one, and credential-like query parameters are left out;
* :class:`ResponseCache` -- lookups and atomic stores of entries, with hit, miss and
  write counters.

Modes:

============  ===========================  =====================================
mode          lookup                       store
============  ===========================  =====================================
off           never reads (None)           no-op
read          stored response or None      no-op
write         never reads (None)           writes (re-records every call)
readwrite     stored response or None      writes
strict        stored response, or raises   no-op (replay only: CI without keys)
              :class:`CacheMissError`
============  ===========================  =====================================

Layout: ``root/<key[:2]>/<key>.json`` holding ``{"key", "request", "response"}`` as
indented JSON with sorted keys, so entries are diff-friendly when committed. Each entry
is written to a temporary file in its own folder and moved into place with
``os.replace``, so readers never see half an entry and any number of threads and
processes may store at once (the same key stored twice with the same content is fine:
the last writer wins, and an identical entry already present is left untouched).

:meth:`ResponseCache.store` checks, encodes (compact JSON, the C encoder) and redacts the
entry in the caller, so a value that is not JSON raises there, and returns: the file is
written later, off the calls in flight. One writer thread per cache collects the entries
stored in the last half second and hands each batch to a writer child process
(:mod:`.cache_writer`), which formats and writes the files on another core; where that
process cannot run, the writer thread writes them itself. A lookup sees entries not yet
written; :meth:`ResponseCache.flush` waits for them (the session calls
:meth:`ResponseCache.close` at its end; the writer thread also finishes its queue when the
interpreter exits, and the child writes what it was handed even if this process dies). A
write that fails is raised as :class:`CacheError` by the next ``store`` or by ``flush``,
once.

Only successful responses are stored: the clients call :meth:`ResponseCache.store`
after a call succeeded, never for an error, so a replay never replays a failure.
A request holding a top-level ``headers``, ``api_key`` or ``authorization`` field is
refused (``ValueError``): credentials never reach a cache key or a cache file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

from ..errors import CacheError, CacheMissError, ConfigError
from .cache_writer import WriterProcess, entry_path, write_batch
from .redaction import redact

__all__ = ["CACHE_MODES", "ResponseCache", "cache_key", "cache_request", "key_url", "parse_cache_mode"]

CACHE_MODES = ("off", "read", "write", "readwrite", "strict")
_READ_MODES = frozenset({"read", "readwrite", "strict"})
_WRITE_MODES = frozenset({"write", "readwrite"})
_FORBIDDEN = frozenset({"headers", "extra_headers", "api_key", "authorization"})
_KEY = re.compile(r"[0-9a-f]{64}")
_BATCH_SECONDS = 0.5  # how long a stored entry waits for the writer thread, at most


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost"})
_SECRET_QUERY = frozenset({"key", "api_key", "api-key", "apikey", "token", "access_token", "sig", "signature"})


def key_url(url: str) -> str:
    """``url`` as cache keys see it: scheme and host lowercased, default ports dropped, any
    loopback host and port written ``http://loopback``, no query, no trailing slash."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    path = parts.path.rstrip("/")
    if host in _LOOPBACK_HOSTS or host.startswith("127."):
        return f"http://loopback{path}"
    scheme = parts.scheme.lower() or "https"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        netloc += f":{port}"
    return f"{scheme}://{netloc}{path}"


def cache_request(url: str, provider: str, body: Mapping[str, Any], repeat: int, *, api: str) -> dict[str, Any]:
    """The keyed request dict of a call captured at the HTTP layer (an SDK's): ``api``,
    ``provider``, the :func:`key_url` of ``url``, its query (credential-like parameters
    dropped), the JSON ``body`` as sent and the case's ``repeat``."""
    from urllib.parse import parse_qsl, urlsplit

    query = {k: v for k, v in sorted(parse_qsl(urlsplit(url).query)) if k.lower() not in _SECRET_QUERY}
    return {"api": api, "provider": provider, "url": key_url(url), "query": query, "body": dict(body), "repeat": repeat}


def parse_cache_mode(text: str) -> str:
    """``text`` as one of :data:`CACHE_MODES` (case and surrounding blanks ignored)."""
    mode = str(text).strip().lower()
    if mode not in CACHE_MODES:
        raise ConfigError(f"unknown cache mode {text!r}: choose one of {', '.join(CACHE_MODES)}")
    return mode


def _check_request(request: Mapping[str, Any]) -> None:
    if not isinstance(request, Mapping):
        raise TypeError(f"a cache request must be a mapping, not {type(request).__name__}")
    secret = sorted(k for k in request if str(k).lower() in _FORBIDDEN)
    if secret:
        raise ValueError(f"a cache request must not hold {', '.join(map(str, secret))}: credentials never reach the cache")


def _canonical(request: Mapping[str, Any]) -> str:
    try:
        return json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a cache request must be plain JSON (str keys, no nan): {exc}") from None


def cache_key(request: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of ``request`` (independent of dict order).

    The key is of the exact JSON values: the client passes what it sends, so ``1`` and
    ``1.0`` differ. Lists keep their order (message order changes the answer).
    """
    _check_request(request)
    return hashlib.sha256(_canonical(request).encode("utf-8", "surrogatepass")).hexdigest()


class ResponseCache:
    """Response files under ``root``, read and written according to ``mode``.

    Thread-safe: the counters and the entries waiting for the writer thread are guarded.
    ``hits`` and ``misses`` count lookups that read the cache (not those in ``off`` or
    ``write`` mode); ``writes`` counts entries written so far (an identical entry already
    on disk is not rewritten nor counted; :meth:`flush` first for the final count).
    """

    def __init__(self, root: Path, mode: str) -> None:
        _caches.add(self)
        self.root = Path(os.path.abspath(root))  # where the writer process writes too, whatever the cwd later
        self.mode = parse_cache_mode(mode)
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._writes = 0
        self._pending: dict[str, str] = {}  # key -> entry text handed to the writer, not yet on disk
        self._batch_due = False  # a batch is queued for the writer thread
        self._hurry = threading.Event()  # flush: write the batch now
        self._failure: CacheError | None = None  # the first failed write, not raised yet
        self._writer: _Writer | None = None

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.root)!r}, {self.mode!r})"

    @property
    def reads(self) -> bool:
        """True when lookups read the cache (read, readwrite, strict)."""
        return self.mode in _READ_MODES

    @property
    def writes_enabled(self) -> bool:
        """True when stores write (write, readwrite)."""
        return self.mode in _WRITE_MODES

    @property
    def hits(self) -> int:
        with self._lock:
            return self._hits

    @property
    def misses(self) -> int:
        with self._lock:
            return self._misses

    @property
    def writes(self) -> int:
        with self._lock:
            return self._writes

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def path_for(self, key: str) -> Path:
        """The entry file of ``key``; ``ValueError`` for a malformed key."""
        return Path(self._file_of(key))

    def _file_of(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"not a cache key (64 lowercase hex digits): {key!r}")
        return entry_path(self.root, key)

    def lookup(self, key: str, describe: str = "") -> dict[str, Any] | None:
        """The stored response for ``key``, or None on a miss (or when the mode never reads).

        In ``strict`` mode a miss raises :class:`CacheMissError`; ``describe`` (e.g.
        ``"openai gpt-4o"``) says which call in its message. A corrupt entry raises
        :class:`CacheError` naming the file.
        """
        path = self._file_of(key)
        if not self.reads:
            return None
        from ..validation import read_text

        with self._lock:
            text = self._pending.get(key)
        if text is None:
            text = read_text(path, "cache", _CorruptEntry, missing_ok=True)
        if text is None:
            self._count("_misses")
            if self.mode == "strict":
                what = f"{describe.strip()}, key {key[:12]}" if describe and describe.strip() else f"key {key[:12]}"
                raise CacheMissError(
                    f"not in the cache (strict replay): {what}; record it with --llm-eval-cache=readwrite"
                    f" (cache folder: {self.root})"
                ) from None
            return None
        response = _parse_entry(text, key, path)
        self._count("_hits")
        return response

    def store(self, key: str, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """Write the entry for ``key`` (write and readwrite modes; a no-op otherwise), on the
        writer thread: it returns before the file is written (see :meth:`flush`).

        Call it only for a successful response. ``key`` is authoritative; ``request`` is
        stored beside the response for people reviewing the entry (usually the dict the
        key was made from, or a readable subset of it), never credentials. Raises
        ``TypeError`` for a value that is not plain JSON, ``ValueError`` for credentials in
        ``request`` and :class:`CacheError` for an earlier write that failed.
        """
        self._file_of(key)  # a malformed key is refused in every mode
        if not self.writes_enabled:
            return
        _check_request(request)
        if not isinstance(response, Mapping):
            raise TypeError(f"a cached response must be a mapping, not {type(response).__name__}")
        try:
            # Compact (the C encoder: indenting is pure Python); the writer indents it.
            text = redact(json.dumps({"key": key, "request": request, "response": response}, sort_keys=True,
                                     separators=(",", ":"), ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"a cached response must be plain JSON: {exc}") from None
        self._raise_failure()
        with self._lock:
            self._pending[key] = text
            start, self._batch_due = not self._batch_due, True
            if self._writer is None:
                self._writer = _Writer(self.root)
            writer = self._writer
        if start:
            try:
                writer.thread.submit(self._write_batch, writer)
            except RuntimeError:  # the interpreter is shutting down: no new threads, write here
                self._write_batch(writer)

    def flush(self) -> None:
        """Wait until every entry handed to :meth:`store` is on disk (or failed). Raises
        :class:`CacheError` for the first write that failed and was not raised yet."""
        with self._lock:
            writer = self._writer
        if writer is not None:
            self._hurry.set()
            writer.thread.submit(_nothing).result()  # one writer thread, first in first out
        self._raise_failure()

    def close(self) -> None:
        """:meth:`flush`, then stop the writer thread and its child process (a later store
        starts new ones)."""
        try:
            self.flush()
        finally:
            with self._lock:
                writer, self._writer = self._writer, None
            if writer is not None:
                writer.stop()

    def _write_batch(self, writer: _Writer) -> None:
        """The writer thread's turn: every entry stored in the last :data:`_BATCH_SECONDS`
        (or until :meth:`flush`), at once: one wake-up per batch, not per call, for a thread
        that shares the GIL with the calls in flight."""
        self._hurry.wait(_BATCH_SECONDS)
        with self._lock:
            batch, self._batch_due = list(self._pending.items()), False
            self._hurry.clear()
        try:
            written, errors = writer.write(batch)
        except BaseException as exc:  # never a batch lost without a word
            written, errors = 0, [(key, f"{type(exc).__name__}: {exc}") for key, _ in batch]
            raise
        finally:
            failure = f"{entry_path(self.root, errors[0][0])}: cannot write cache entry: {errors[0][1]}" if errors else None
            with self._lock:
                self._writes += written
                if failure is not None and self._failure is None:
                    more = f" (and {len(errors) - 1} more entries)" if len(errors) > 1 else ""
                    self._failure = CacheError(failure + more)
                for key, text in batch:
                    if self._pending.get(key) is text:  # written or failed (said), and not stored again meanwhile
                        del self._pending[key]

    def _raise_failure(self) -> None:
        with self._lock:
            failure, self._failure = self._failure, None
        if failure is not None:
            raise failure


class _Writer:
    """One writer thread and its child process, made together and stopped together: the
    process is only ever used from that thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="llm-eval-cache-writer")
        self._process: WriterProcess | None = None  # started with the first batch
        self._process_failed = False  # it could not start or died: this thread writes the files

    def write(self, batch: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        """Write ``batch`` ((key, compact text) pairs) through the child process, or here when
        it cannot run (the batch in hand included): (files written, [(key, error message)])."""
        if not self._process_failed:
            try:
                if self._process is None:
                    self._process = WriterProcess(self.root)
                return self._process.write(batch)
            except Exception:  # OSError when it cannot start or is gone; whatever else, the same
                self._stop_process()
                self._process_failed = True  # what the child wrote stays; the rest is written here
        return write_batch(self.root, batch)

    def stop(self) -> None:
        """Finish the batches queued, then end the child process."""
        try:
            self.thread.submit(self._stop_process)
        except RuntimeError:  # the interpreter is shutting down: the process's finalizer ends it
            pass
        self.thread.shutdown()

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.close()


_caches: weakref.WeakSet[ResponseCache] = weakref.WeakSet()


def _after_fork() -> None:
    """In a forked process: the writer threads did not come along (their queues would never
    run), so each cache starts a writer of its own with its next store; entries waiting in
    the parent are written by the parent (and again here if this copy stores, identical)."""
    for cache in list(_caches):
        cache._lock = threading.Lock()
        cache._hurry = threading.Event()
        cache._writer, cache._batch_due = None, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _nothing() -> None:
    """A no-op for the writer's queue: when it has run, every write before it has too."""


class _CorruptEntry(CacheError):
    def __init__(self, message: str) -> None:
        path, sep, problem = message.partition(": ")
        fix = "delete the file and record the call again (--llm-eval-cache=readwrite)"
        super().__init__(f"{path}: corrupt cache entry ({problem}); {fix}" if sep else f"{message}; {fix}")


def _parse_entry(text: str, key: str, path: Path) -> dict[str, Any]:
    """The entry's response, validated (strict JSON, depth, ``schemas/cache-entry.schema.json``:
    the response in its protocol's shape), or CacheError naming the file and field."""
    from ..validation import check, parse

    data = parse(text, str(path), _CorruptEntry)
    check(data, "cache", str(path), _CorruptEntry, what="not a valid cache entry")
    if data["key"] != key:
        raise _CorruptEntry(f"{path}: it holds key {data['key'][:12]!r}, not {key[:12]!r}")
    return data["response"]
