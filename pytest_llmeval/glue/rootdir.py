"""Where the project is: refuse a rootdir pytest took from an output path.

pytest picks its rootdir before plugins load, from the command line's arguments that exist
on disk and do not start with ``-``. So in ``pytest --llm-eval --llm-eval-report ../out/r.json``
the report path (when the file exists, e.g. on the second run) is taken for a test path, the
rootdir moves to ``../out``, suite ids change and the baselines are not found. Suite ids and
the baseline folder must be anchored to the project's config file, so this module detects
that case and stops the run with what to write instead.

xdist workers parse the same command line again, after the controller wrote its
in-progress report (and Markdown): a path that did not exist when the controller chose its
rootdir exists for them. :func:`joined_option_values` gives them the values in the
one-argument form, which pytest never takes for a test path.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Sequence

# Files pytest reads its configuration from, and the section that makes each one count.
_CONFIG_FILES = (("pytest.ini", None), (".pytest.ini", None), ("pytest.toml", None), (".pytest.toml", None),
                 ("pyproject.toml", "[tool.pytest"), ("tox.ini", "[pytest]"), ("setup.cfg", "[tool:pytest]"))


def project_config(start: Path) -> Path | None:
    """The nearest pytest config file at or above ``start`` (pytest's own file names and sections)."""
    for folder in (start, *start.parents):
        for name, section in _CONFIG_FILES:
            path = folder / name
            if path.is_file():
                if section is None:
                    return path
                try:
                    if section in path.read_text(encoding="utf-8", errors="replace"):
                        return path
                except OSError:
                    continue
    return None


def option_values_taken_as_paths(args: Sequence[str | PathLike[str]], value_options: set[str],
                                 invocation_dir: Path) -> list[tuple[str, str]]:
    """(option, value) pairs where a ``--llm-eval-*`` option's value is a separate argument
    naming something that exists: the arguments pytest took for test paths."""
    found = []
    args = [str(arg) for arg in args]
    for option, value in zip(args, args[1:]):
        if option in value_options and not value.startswith("-") and (invocation_dir / value.split("::")[0]).exists():
            found.append((option, value))
    return found


def joined_option_values(args: Sequence[str | PathLike[str]], value_options: set[str]) -> list[str]:
    """``args`` (as strings) with each ``--option value`` of ``value_options`` written
    ``--option=value``: the same to argparse. A value starting with ``-`` is left alone, as
    argparse would not take it for the value, and so is everything after ``--``."""
    out = [str(arg) for arg in args]
    i = 0
    while i < len(out) - 1 and out[i] != "--":
        if out[i] in value_options and not out[i + 1].startswith("-"):
            out[i:i + 2] = [f"{out[i]}={out[i + 1]}"]
        i += 1
    return out


def rootdir_mistake(args: Sequence[str | PathLike[str]], value_options: set[str], invocation_dir: Path, rootdir: Path,
                    explicit: bool) -> str | None:
    """The message when pytest's ``rootdir`` came from an output path rather than the project
    at or above ``invocation_dir``; None when it did not (or the user chose it: ``explicit``)."""
    if explicit:
        return None
    taken = option_values_taken_as_paths(args, value_options, invocation_dir)
    if not taken:
        return None
    config = project_config(invocation_dir)
    project = config.parent if config is not None else invocation_dir
    if rootdir.resolve() == project.resolve():
        return None
    option, value = taken[0]
    where = f"the project at {project} ({config.name})" if config is not None else f"the current folder {project}"
    return (f"pytest took {value!r}, the value of {option}, for a test path and chose the rootdir {rootdir}, not "
            f"{where}: suite ids and baselines would not match the project's. Write {option}={value} "
            f"(one argument), or pass --rootdir={project}")
