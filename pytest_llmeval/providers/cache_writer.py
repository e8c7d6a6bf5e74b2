"""How recorded cache entries reach the disk: a child process that writes their files.

This module owns

* :func:`entry_path` and :func:`write_entry` -- the file of one entry,
  ``root/<key[:2]>/<key>.json``, made from the entry's compact JSON: indented with sorted
  keys (diff-friendly when committed), written atomically (:func:`~pytest_llmeval.fileio.write_atomic`,
  not fsynced) and left untouched when it already holds the same text;
* :class:`WriterProcess` -- a child Python process (:func:`main`) that runs
  :func:`write_entry` for each batch of entries the cache hands it over a pipe.

Why a process: a recorded run keeps its calls in flight on threads (or an event loop)
that share one GIL. Writing a file takes five system calls (open, create, write, close,
rename), and after each one the writing thread must take the GIL back from the calls in
flight; formatting the indented JSON is pure-Python work under the same GIL. Both made a
recorded run 10-30% slower than a live one on a 2-core machine (``benchmarks/concurrency.py``,
docs/providers.md). In a child process that work runs on another core, and the run pays
one pipe write per batch.

Protocol, UTF-8 lines. To the child (stdin): ``<key> <compact JSON of the entry>`` per
entry, then ``.`` to end a batch. From the child (stdout), one line per batch:
``{"written": <files written>, "errors": [[<key>, <message>], ...]}``. The child ignores
SIGINT and, on POSIX, runs in a process group of its own (Ctrl-C stops the run, not the
writes it has handed over); it exits at the end of its input, so a run that dies still
leaves every entry it handed over on disk. A process forked from this one lets go of the
pipes (:func:`_after_fork`), so only the process that started the child holds its input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import weakref
from pathlib import Path
from typing import BinaryIO, Sequence

from ..fileio import write_atomic

__all__ = ["WriterProcess", "entry_path", "entry_text", "main", "write_batch", "write_entry"]

_END = b".\n"
_CLOSE_SECONDS = 30.0  # how long close() waits for the child to write what it was handed


def entry_path(root: str | os.PathLike[str], key: str) -> str:
    """``root/<key[:2]>/<key>.json`` (``key`` is not checked here: the cache checks it)."""
    return os.path.join(root, key[:2], f"{key}.json")


def entry_text(compact: str) -> str:
    """The file text of an entry given as compact JSON: indented by 2, keys sorted, non-ASCII
    kept, a final newline. Raises ``ValueError`` for text that is not JSON."""
    return json.dumps(json.loads(compact), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_entry(root: str | os.PathLike[str], key: str, compact: str) -> bool:
    """Write the entry file of ``key`` under ``root`` from its compact JSON. True when the
    file was written, False when it already held the same text. Raises ``OSError`` (the
    file system) and ``ValueError`` (not JSON, or text that UTF-8 cannot encode)."""
    path = entry_path(root, key)
    text = entry_text(compact)
    try:
        with open(path, encoding="utf-8") as existing:
            if existing.read() == text:
                return False
    except (OSError, UnicodeDecodeError):
        pass
    # Atomic, not fsynced: an entry is a recording that the next record run rewrites, and
    # one that a power cut truncated fails validation naming its file. An fsync per call
    # cost ~3.5 ms of each recorded call's wall time.
    write_atomic(Path(path), text, mode=0o644, durable=False)
    return True


def write_batch(root: str | os.PathLike[str], batch: Sequence[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
    """:func:`write_entry` for each (key, compact JSON) of ``batch``: (files written,
    [(key, error message)]). One bad entry never stops the others."""
    written, errors = 0, []
    for key, compact in batch:
        try:
            written += write_entry(root, key, compact)
        except Exception as exc:  # every entry gets its answer
            errors.append((key, str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"))
    return written, errors


class WriterProcess:
    """A running writer child for the cache folder ``root``. Not thread-safe: the cache's
    one writer thread uses it. Raises ``OSError`` when the child cannot be started, and
    from :meth:`write` when it is gone (the cache then writes the batch itself)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        package_parent = str(Path(__file__).resolve().parents[2])
        # -I -S: no environment variables, user site or .pth files (nothing of the app's
        # start-up runs in the writer); the package is found where this process found it.
        code = "import sys; sys.path.insert(0, sys.argv[1]); from pytest_llmeval.providers.cache_writer import main; sys.exit(main(sys.argv[2:]))"
        self._proc = subprocess.Popen(
            [sys.executable or "python", "-I", "-S", "-c", code, package_parent, os.fspath(root)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            **({} if os.name == "nt" else {"process_group": 0}),  # a Ctrl-C in the terminal stops the run, not the writer
        )
        # Also at interpreter exit, for a cache nobody closed: its entries are on disk when
        # this process ends.
        self._close = weakref.finalize(self, _close_process, self._proc)
        _running.add(self)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def exit_code(self) -> int | None:
        """The child's exit status once it ended (negative: killed by that signal), else None."""
        return self._proc.poll()

    def write(self, batch: Sequence[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        """Hand ``batch`` ((key, compact JSON) pairs) to the child and wait until its files are
        written: (files written, [(key, error message)]). ``OSError`` when the child is gone
        or answers nonsense."""
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        data = "".join(f"{key} {compact}\n" for key, compact in batch).encode("utf-8", "surrogatepass") + _END
        try:
            stdin.write(data)
            stdin.flush()
            reply = stdout.readline()
        except ValueError as exc:  # the pipe was closed
            raise OSError(f"cache writer process: {exc}") from None
        try:
            answer = json.loads(reply)
            return int(answer["written"]), [(str(key), str(message)) for key, message in answer["errors"]]
        except (ValueError, TypeError, KeyError) as exc:
            code = self._proc.poll()
            raise OSError(f"cache writer process {'exited with ' + str(code) if code is not None else 'answered'}"
                          f" {reply[:200]!r} ({exc})") from None

    def close(self) -> None:
        """End the input and wait for the child to write what it was handed and exit (at most
        :data:`_CLOSE_SECONDS`, then it is killed)."""
        self._close()

    def _forked(self) -> None:
        """In a process forked from the one that started the child: let go of the pipes (they
        now lead to /dev/null, so nothing this copy flushes reaches the child, and the child
        sees the end of its input when its own parent closes it) and of the child."""
        self._close.detach()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    os.dup2(devnull, pipe.fileno())
        finally:
            os.close(devnull)
        self._proc.returncode = 0  # not this process's child: never waited for here


_running: weakref.WeakSet[WriterProcess] = weakref.WeakSet()


def _after_fork() -> None:
    for process in list(_running):
        process._forked()
    _running.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _close_process(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        try:
            if pipe is not None:
                pipe.close()
        except OSError:
            pass
    try:
        proc.wait(_CLOSE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _serve(source: BinaryIO, answers: BinaryIO, root: str) -> None:
    batch: list[tuple[str, str]] = []
    for line in source:
        if line == _END:
            written, errors = write_batch(root, batch)
            answers.write(json.dumps({"written": written, "errors": errors}).encode("ascii") + b"\n")
            answers.flush()
            batch = []
            continue
        key, _, compact = line.rstrip(b"\n").partition(b" ")
        batch.append((key.decode("ascii", "replace"), compact.decode("utf-8", "surrogatepass")))  # as the cache encodes


def main(argv: Sequence[str]) -> int:
    """The child: ``argv`` is ``[root]``; serves stdin until it ends. Exit status 0, 2 on bad
    arguments."""
    if len(argv) != 1:
        print("usage: cache_writer ROOT (entries on stdin)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(sys.stdin.buffer, sys.stdout.buffer, argv[0])
    return 0
