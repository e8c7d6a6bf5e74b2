"""Shared test helpers: the pytester plugin and writers for eval projects."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def write_jsonl(pytester: pytest.Pytester):
    """Write rows as a JSONL dataset in the pytester project; returns its path."""

    def write(name: str, rows: list[dict]) -> str:
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return name

    return write
