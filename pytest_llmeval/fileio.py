"""Small file and repository helpers shared by the baseline store, the prompt log and the report.

``write_atomic`` writes through a hidden temporary file (``.<name>.<random>.tmp``) in the
same folder and ``os.replace``, so a reader sees the old file or the new one, never half
of one; the new file keeps the permissions of the file it replaces (or of its folder's
other files). A process killed mid-write can leave its temporary file behind: the
plugin's folders carry a ``.gitignore`` (:func:`ensure_gitignore`) so it is never
committed, and :func:`clean_stale_temps` removes it on the next run. :func:`file_lock`
serialises read-merge-write cycles of two runs (the ``filelock`` library, imported when
used). ``git_info`` says which commit and branch a run came from.
"""

from __future__ import annotations

import functools
import itertools
import os
import stat
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["GITIGNORE", "LOCK_TIMEOUT", "clean_stale_temps", "ensure_gitignore", "file_lock", "file_mode", "git_info",
           "write_atomic"]

LOCK_TIMEOUT = 120.0  # seconds a writer waits for another run's lock before giving up
_REPLACE_ATTEMPTS = 5  # os.replace can fail on Windows while another process reads the target
STALE_SECONDS = 600.0  # a temporary file this old belongs to no live write
GITIGNORE = """# Written by pytest-llmeval: temporary files of interrupted writes, lock files and
# set-aside fragments of the prompt log are never to be committed.
.*.tmp
.*.lock
*.partial
"""


def file_mode(path: Path) -> int:
    """Permission bits for a new or replaced ``path``: the existing file's, else those of
    another file in its folder, else what the umask gives (as ``open`` would)."""
    path = Path(path)
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    try:
        for sibling in sorted(path.parent.iterdir()):
            if not sibling.name.startswith(".") and sibling.is_file():
                return stat.S_IMODE(sibling.stat().st_mode)
    except OSError:
        pass
    return 0o666 & ~_umask()


def write_atomic(path: Path, text: str, *, mode: int | None = None, durable: bool = True) -> None:
    """Write ``text`` (UTF-8, ``\n`` line ends) to ``path`` atomically: a hidden temporary
    file in the same folder, fsync (unless ``durable`` is false), ``os.replace``. Readers
    see the old file or the whole new one, even if the process is killed; the fsync also
    keeps the new one through a power cut. Permissions: ``mode`` when given, else
    :func:`file_mode`. ``os.replace`` is retried briefly on ``PermissionError`` (Windows
    refuses it while another process reads the target). OSError on failure, with the
    temporary file removed.

    Few system calls (create, write, close, chmod, rename; the folder is made only when
    missing): each one lets other threads take the GIL, which is what a write costs a
    busy multi-threaded run."""
    path = Path(path)
    mode = file_mode(path) if mode is None else mode
    data = memoryview(text.encode("utf-8"))
    try:
        fd, tmp = _new_temp(path, mode)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _new_temp(path, mode)
    try:
        try:
            while data:
                data = data[os.write(fd, data):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if mode & _umask():  # created with the umask's bits cleared: set the whole mode
            os.chmod(tmp, mode)
        for attempt in range(_REPLACE_ATTEMPTS):
            try:
                os.replace(tmp, path)
                break
            except PermissionError:
                if attempt == _REPLACE_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * 2**attempt)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_temp_numbers = itertools.count()


def _new_temp(path: Path, mode: int) -> tuple[int, str]:
    """A new hidden temporary file beside ``path`` (open descriptor, name), created with
    ``mode`` (less the umask). Named by process and a counter (no name is tried twice in
    a process); one left behind by a dead process of the same id gets a random name."""
    name = os.path.join(path.parent, f".{path.name[:40]}.{os.getpid()}-{next(_temp_numbers)}.tmp")
    try:
        return os.open(name, _TEMP_FLAGS, mode), name
    except FileExistsError:
        fd, name = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
        os.chmod(name, mode)  # mkstemp makes it 0600
        return fd, name


@functools.cache
def _umask() -> int:
    """The process's umask, read once: from ``/proc/self/status`` on Linux, elsewhere by
    setting it (to the strictest mask, for that instant) and back."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def ensure_gitignore(folder: Path) -> None:
    """Give ``folder`` a ``.gitignore`` for the plugin's temporary and lock files, unless it
    has one (a user's own file is never changed)."""
    path = Path(folder) / ".gitignore"
    if not path.exists():
        write_atomic(path, GITIGNORE)


def clean_stale_temps(folder: Path, older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove ``.*.tmp`` files under ``folder`` left by writes killed more than
    ``older_than`` seconds ago (a live write's temporary file is younger). Returns them."""
    removed = []
    cutoff = time.time() - older_than
    for dirpath, _, names in os.walk(folder):
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                candidate = Path(dirpath) / name
                try:
                    if candidate.stat().st_mtime < cutoff:
                        candidate.unlink()
                        removed.append(candidate)
                except OSError:
                    continue
    return removed


@contextmanager
def file_lock(path: Path, what: str, error: type[Exception], timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the lock file ``path`` (another process holding it: wait up to ``timeout``
    seconds, then ``error`` saying ``what`` was locked). Re-entrant within one thread."""
    import filelock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path), timeout=timeout, is_singleton=True)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise error(f"{path}: another run has held the lock on {what} for {timeout:g} s; wait for it to finish "
                    "(or delete the lock file if no run is left)") from None
    try:
        yield
    finally:
        lock.release()


def git_last_commit(root: Path, path: Path) -> str | None:
    """The short hash of the last commit on this branch that touched ``path`` (also when the
    file was since deleted), or None when git does not know it (or is not installed)."""
    try:
        done = subprocess.run(["git", "log", "-1", "--format=%h", "--", str(path)], cwd=root, capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def git_info(root: Path) -> dict[str, str]:
    """The commit and branch of ``root`` when git knows them (CI variables as fallback)."""
    info: dict[str, str] = {}
    for key, args in (("commit", ["rev-parse", "HEAD"]), ("branch", ["rev-parse", "--abbrev-ref", "HEAD"])):
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            break
        value = done.stdout.strip()
        if done.returncode == 0 and value and value != "HEAD":
            info[key] = value
    branch = os.environ.get("CI_COMMIT_REF_NAME") or os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME")
    if "branch" not in info and branch:
        info["branch"] = branch
    return info
