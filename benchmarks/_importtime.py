"""Reading ``python -X importtime`` output, shared by the start-up and per-case benchmarks."""

from __future__ import annotations

__all__ = ["outermost_nodes", "parse_importtime"]


def parse_importtime(log: str) -> list:
    """``-X importtime`` output as a forest of (name, cumulative us, children).

    A module is printed after the modules it imported (post-order), its name indented two
    spaces per nesting level."""
    stack: list[tuple[int, str, int, list]] = []
    for line in log.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # other output, or the header line
        raw_name = parts[2][1:]  # drop the separator space
        depth = (len(raw_name) - len(raw_name.lstrip(" "))) // 2
        children = []
        while stack and stack[-1][0] > depth:
            children.append(stack.pop()[1:])
        stack.append((depth, raw_name.strip(), int(parts[1]), children))
    return [node[1:] for node in stack]


def outermost_nodes(nodes: list, packages: tuple[str, ...]) -> list[tuple[str, int, list]]:
    """(name, cumulative us, children) of modules of ``packages`` that no module of
    ``packages`` imported."""
    found = []
    for name, cumulative, children in nodes:
        if name.partition(".")[0] in packages:
            found.append((name, cumulative, children))
        else:
            found += outermost_nodes(children, packages)
    return found
