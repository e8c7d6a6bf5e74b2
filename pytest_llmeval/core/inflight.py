"""Which app calls are in flight in a test process, so that a crash is blamed on its case.

App calls run ahead of pytest's items (see :mod:`.runner`), so when a call kills its
xdist worker, xdist blames whatever item pytest was running, and the replacement
worker, calling the same app ahead again, crashes again. Instead each worker appends
``start``/``end`` lines to a journal in a folder the controller names; after a crash
the controller reads which calls were in flight (:func:`record_crash`):

- one call in flight: that case is the culprit; its app is not called again and the
  case becomes an error with the worker's exit reason;
- several: they are suspects; each is called again alone, with nothing else in flight,
  so a second crash names the culprit.

No pytest here. Journal lines are written with one unbuffered ``os.write`` each, so they
survive the process dying (``os._exit``, a signal) right after.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

__all__ = ["FlightLog", "Key", "record_crash"]

Key = tuple[str, str, int]  # suite id, case id, repeat
CRASHES = "crashes.jsonl"


class FlightLog:
    """One test process's journal of app calls, and the verdicts on earlier crashes."""

    def __init__(self, folder: str | os.PathLike[str], worker: str) -> None:
        self.folder = Path(folder)
        self._fd = os.open(self.folder / f"{worker}.journal", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()

    def started(self, key: Key) -> None:
        self._write("start", key)

    def ended(self, key: Key) -> None:
        self._write("end", key)

    def _write(self, event: str, key: Key) -> None:
        line = (json.dumps([event, *key]) + "\n").encode("utf-8")
        with self._lock:
            os.write(self._fd, line)

    def verdicts(self) -> tuple[dict[Key, str], set[Key]]:
        """(culprits: key -> crash reason, suspects) from the crashes recorded so far."""
        return crash_verdicts(self.folder)

    def close(self) -> None:
        os.close(self._fd)


def in_flight(folder: Path, worker: str) -> list[Key]:
    """The calls a worker started and did not end, in start order."""
    path = Path(folder) / f"{worker}.journal"
    flying: dict[Key, None] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        try:
            event, suite_id, case_id, repeat = json.loads(line)
        except ValueError:  # a line cut by the crash
            continue
        key = (suite_id, case_id, int(repeat))
        if event == "start":
            flying[key] = None
        else:
            flying.pop(key, None)
    return list(flying)


def record_crash(folder: str | os.PathLike[str], worker: str, reason: str) -> list[Key]:
    """Record the crash of ``worker``: its calls in flight become a culprit (one) or
    suspects (several). Returns them (empty: the crash was not in an app call)."""
    folder = Path(folder)
    flying = in_flight(folder, worker)
    entries = [{"key": list(key), "culprit": len(flying) == 1, "reason": reason} for key in flying]
    with open(folder / CRASHES, "a", encoding="utf-8") as out:
        out.writelines(json.dumps(entry) + "\n" for entry in entries)
    (folder / f"{worker}.journal").unlink(missing_ok=True)
    return flying


def crash_verdicts(folder: Path) -> tuple[dict[Key, str], set[Key]]:
    culprits: dict[Key, str] = {}
    suspects: set[Key] = set()
    try:
        lines = (Path(folder) / CRASHES).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return culprits, suspects
    for line in lines:
        entry = json.loads(line)
        suite_id, case_id, repeat = entry["key"]
        key = (suite_id, case_id, int(repeat))
        if entry["culprit"]:
            culprits[key] = entry["reason"]
        else:
            suspects.add(key)
    return culprits, suspects - set(culprits)
