"""Small file and repository helpers shared by the baseline store and the report.

``write_atomic`` writes through a temporary file in the same folder and ``os.replace``,
so a reader sees the old file or the new one, never half of one, and an interrupted
write leaves nothing behind. ``git_info`` says which commit and branch a run came from.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

__all__ = ["git_info", "write_atomic"]


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
