"""The package layout keeps its layers: read every module's imports (with ``ast``, lazy and
TYPE_CHECKING imports included, since each is a dependency) and check the rules in
pytest_llmeval's folder docstrings.

- Only the glue (``glue/``, ``plugin.py``, ``hookspecs.py``) imports ``pytest``/``_pytest``.
- Imports run down the layers (table below): a module imports its own folder or a lower
  layer, never a higher one or another folder of its rank (top-level modules of one rank
  may import each other), so nothing below imports the glue and folders form no cycle.

The rules are also checked on a small synthetic tree, so the test shows it can fail.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "pytest_llmeval"

# Layers from the bottom. "" is the package's top-level modules of that rank.
LAYERS: dict[str, int] = {
    "errors": 0, "fileio": 0, "models": 0, "prompts": 0, "validation": 0,
    "providers": 1, "testing": 1,
    "scorers": 2,
    "gate": 3,
    "core": 4,
    "reporting": 5,
    "monitoring": 6,
    "check": 7,
    "glue": 8,
    "plugin": 9, "hookspecs": 9, "cli": 9, "__init__": 9,
}
PYTEST_IMPORTERS = {"glue", "plugin", "hookspecs"}


def unit_of(module: str) -> str:
    """The layer unit of a dotted module below the package: its folder, or for a
    top-level module its own name (``gate.stats`` -> ``gate``, ``errors`` -> ``errors``)."""
    return module.split(".", 1)[0] if module else "__init__"


def module_imports(path: Path, package: str, root: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` for every import in the file, relative ones resolved."""
    rel = path.relative_to(root).with_suffix("")
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
        here = parts
    else:
        here = parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
                # ``from . import stats`` imports a module of that folder.
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module or ""))
    return found


def layout_violations(root: Path, package: str, layers: dict[str, int], pytest_importers: set[str]) -> list[str]:
    """Every broken rule as ``file:line: message``; an empty list when the tree is clean."""
    problems = []
    folder_edges: set[tuple[str, str]] = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        own = unit_of(".".join(rel.with_suffix("").parts))
        if own not in layers:
            problems.append(f"{rel}: {own!r} has no layer; add it to the layer table")
            continue
        for line, target in module_imports(path, package, root):
            top = target.split(".", 1)[0]
            if top in ("pytest", "_pytest") and own not in pytest_importers:
                problems.append(f"{rel}:{line}: imports {target} outside the glue")
            if top != package:
                continue
            inner = target.split(".", 1)[1] if "." in target else ""
            other = unit_of(inner)
            if other not in layers or other == own:
                continue
            folder_edges.add((own, other))
            same_rank_folders = layers[other] == layers[own] and ((root / own).is_dir() or (root / other).is_dir())
            if layers[other] > layers[own] or same_rank_folders:
                problems.append(f"{rel}:{line}: {own} (layer {layers[own]}) imports {target} "
                                f"({other}, layer {layers[other]}): imports must run down the layers")
    cycle = _folder_cycle(folder_edges)
    if cycle:
        problems.append("import cycle between folders: " + " -> ".join(cycle))
    return problems


def _folder_cycle(edges: set[tuple[str, str]]) -> list[str]:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*trail, node, nxt]
            if nxt not in state:
                found = visit(nxt, [*trail, node])
                if found:
                    return found
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [])
            if found:
                return found
    return []


def test_the_package_keeps_its_layers():
    assert layout_violations(PACKAGE_ROOT, "pytest_llmeval", LAYERS, PYTEST_IMPORTERS) == []


def test_every_folder_says_what_it_owns():
    for init in sorted(PACKAGE_ROOT.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 12, f"{init.relative_to(PACKAGE_ROOT)} needs a docstring saying what it owns"


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


SYNTHETIC_LAYERS = {"errors": 0, "gate": 3, "core": 4, "glue": 7, "__init__": 8}
CLEAN_TREE = {
    "__init__.py": "",
    "errors.py": "",
    "gate/__init__.py": "",
    "gate/stats.py": "import math\nfrom ..errors import *\n",
    "core/__init__.py": "",
    "core/run.py": "from ..gate import stats\nfrom . import other\n",
    "core/other.py": "",
    "glue/__init__.py": "",
    "glue/session.py": "import pytest\nfrom ..core.run import x\n",
}


def test_a_clean_synthetic_tree_passes(tmp_path):
    write_tree(tmp_path, CLEAN_TREE)
    assert layout_violations(tmp_path, "pkg", SYNTHETIC_LAYERS, {"glue"}) == []


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("gate/stats.py", "import pytest\n", "gate/stats.py:1: imports pytest outside the glue"),
    ("gate/stats.py", "def f():\n    from _pytest.nodes import Item\n", "gate/stats.py:2: imports _pytest.nodes outside the glue"),
    ("core/run.py", "from ..glue.session import x\n", "core/run.py:1: core (layer 4) imports pkg.glue.session"),
    ("gate/stats.py", "from pkg.core import run\n", "gate/stats.py:1: gate (layer 3) imports pkg.core"),
    ("gate/stats.py", "from ..core import run\n", "import cycle between folders: core -> gate -> core"),
])
def test_a_broken_rule_in_a_synthetic_tree_is_named(tmp_path, name, text, expected):
    write_tree(tmp_path, {**CLEAN_TREE, name: text})
    problems = layout_violations(tmp_path, "pkg", SYNTHETIC_LAYERS, {"glue"})
    assert any(p.startswith(expected) for p in problems), problems


def test_a_module_outside_the_table_is_named(tmp_path):
    write_tree(tmp_path, {**CLEAN_TREE, "extras/thing.py": ""})
    assert layout_violations(tmp_path, "pkg", SYNTHETIC_LAYERS, {"glue"}) == [
        "extras/thing.py: 'extras' has no layer; add it to the layer table"]


def test_import_pytest_added_to_a_real_gate_module_is_caught(tmp_path):
    import shutil

    copy = tmp_path / "pytest_llmeval"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    stats = copy / "gate" / "stats.py"
    stats.write_text(stats.read_text(encoding="utf-8") + "\nimport pytest\n", encoding="utf-8")
    problems = layout_violations(copy, "pytest_llmeval", LAYERS, PYTEST_IMPORTERS)
    assert len(problems) == 1 and problems[0].startswith("gate/stats.py:") and "imports pytest outside the glue" in problems[0]
