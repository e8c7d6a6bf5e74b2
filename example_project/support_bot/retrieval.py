"""Retrieval over the help-center pages in knowledge/: every paragraph is a passage, and a
question gets the passages that share the most content words with it.

A stand-in for a vector store that keeps the example dependency-free and deterministic;
an app would call its embedding index here.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
_STOP = frozenset("""a an and are as at be by can do does for from get how i if in is it its me my of on once or our
so some than that the then this to was we what when where which who why will with you your""".split())


def content_words(text: str) -> set[str]:
    """Lower-cased words without stop words, plural 's' stripped: the overlap measure."""
    words = re.findall(r"[a-z0-9$][a-z0-9$:-]*", text.lower())
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words if w not in _STOP}


@functools.cache
def passages(folder: Path = KNOWLEDGE) -> tuple[str, ...]:
    """Every paragraph of every page, headings left out, in file order."""
    found = []
    for page in sorted(folder.glob("*.md")):
        for block in page.read_text(encoding="utf-8").split("\n\n"):
            block = block.strip()
            if block and not block.startswith("#"):
                found.append(block)
    return tuple(found)


def retrieve(question: str, k: int = 2) -> list[str]:
    """The ``k`` passages sharing the most content words with the question (ties: file order)."""
    wanted = content_words(question)
    scored = sorted(enumerate(passages()), key=lambda item: (-len(wanted & content_words(item[1])), item[0]))
    return [text for _, text in scored[:k] if wanted & content_words(text)]
