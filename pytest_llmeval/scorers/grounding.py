"""Cheap lexical proxies for RAG answers: context_overlap (faithfulness) and
question_overlap (relevance).

Both compare sets of *content words*: the casefolded alphanumeric tokens of a text
(``[^\\W_]+``, so letters of any script and digits) minus a small English stopword list
(:data:`STOPWORDS`, which includes negations and question words), optionally with plural
endings removed (``stem_plurals=True``: Harman's S-stemmer). They see words, not
meaning: a paraphrase of the context scores low, and an answer that negates the context
("refunds are *not* allowed") scores as high as one that repeats it. Use them as
smoke alarms next to a judge, not as the measure of faithfulness or relevance.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from ..errors import ScorerError
from ..models import Case
from ._common import check_bool, check_strings, text_of
from .base import Scorer

__all__ = ["BUILTIN_SCORERS", "STOPWORDS", "content_words", "context_overlap", "question_overlap", "s_stem"]

STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves also may might must shall s t don doesn didn isn aren wasn
    weren won wouldn shouldn couldn cannot
    """.split()
)

_WORD = re.compile(r"[^\W_]+")


def s_stem(word: str) -> str:
    """Harman's S-stemmer (1991): ``-ies`` to ``-y``, ``-es`` to ``-e``, drop a final ``-s``,
    with its exceptions (``-eies``, ``-aies``, ``-aes``, ``-ees``, ``-oes``, ``-us``, ``-ss``)."""
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def content_words(text: str, extra_stopwords: Iterable[str] = (), *, stem_plurals: bool = False) -> set[str]:
    """The distinct casefolded alphanumeric tokens of ``text`` that are not stopwords
    (stopwords are removed before stemming)."""
    stop = STOPWORDS | {word.casefold() for word in extra_stopwords}
    words = {word for word in _WORD.findall(text.casefold()) if word not in stop}
    return {s_stem(word) for word in words} if stem_plurals else words


def _share(part: set[str], whole: set[str]) -> float:
    """Share of ``part`` found in ``whole``; 1.0 when ``part`` is empty (nothing to check)."""
    if not part:
        return 1.0
    return len(part & whole) / len(part)


def _context_text(case: Case) -> str:
    context = case.context
    if isinstance(context, str):
        passages = [context]
    elif isinstance(context, (list, tuple)) and all(isinstance(item, str) for item in context):
        passages = list(context)
    elif context is None:
        passages = []
    else:
        raise ScorerError(
            f"scorer 'context_overlap': case {case.id!r} has a 'context' of type {type(context).__name__}; "
            "it must be a string or a list of strings"
        )
    if not any(passage.strip() for passage in passages):
        raise ScorerError(f"scorer 'context_overlap' needs the row's 'context' field; case {case.id!r} has none")
    return "\n".join(passages)


def context_overlap(output: Any, case: Case, *, extra_stopwords: Iterable[str] = (), stem_plurals: bool = False) -> float:
    """Share of the answer's content words that occur in the case's context (a cheap
    faithfulness proxy). An answer without content words scores 1.0."""
    answer = content_words(text_of(output), extra_stopwords, stem_plurals=stem_plurals)
    return _share(answer, content_words(_context_text(case), extra_stopwords, stem_plurals=stem_plurals))


def question_overlap(
    output: Any,
    case: Case,
    *,
    input_key: str = "question",
    extra_stopwords: Iterable[str] = (),
    stem_plurals: bool = False,
) -> float:
    """Share of the question's content words that occur in the answer (a cheap relevance
    proxy). The question is ``inputs[input_key]``. A question without content words
    scores 1.0."""
    if input_key not in case.inputs or case.inputs[input_key] is None:
        known = ", ".join(sorted(map(str, case.inputs))) or "none"
        raise ScorerError(
            f"scorer 'question_overlap' needs the question in inputs[{input_key!r}] (set the option 'input_key' "
            f"to use another input); case {case.id!r} has inputs: {known}"
        )
    question = content_words(text_of(case.inputs[input_key]), extra_stopwords, stem_plurals=stem_plurals)
    return _share(question, content_words(text_of(output), extra_stopwords, stem_plurals=stem_plurals))


def _stopword_option(scorer: str, extra_stopwords: Any) -> tuple[str, ...]:
    return check_strings(scorer, "extra_stopwords", extra_stopwords) if extra_stopwords != () else ()


def _context_overlap_options(extra_stopwords: Any = (), stem_plurals: Any = False) -> dict[str, Any]:
    return {
        "extra_stopwords": _stopword_option("context_overlap", extra_stopwords),
        "stem_plurals": check_bool("context_overlap", "stem_plurals", stem_plurals),
    }


def _question_overlap_options(input_key: Any = "question", extra_stopwords: Any = (), stem_plurals: Any = False) -> dict[str, Any]:
    if not isinstance(input_key, str) or not input_key:
        raise ScorerError(f"scorer 'question_overlap': option 'input_key' must be the name of an input, got {input_key!r}")
    return {
        "input_key": input_key,
        "extra_stopwords": _stopword_option("question_overlap", extra_stopwords),
        "stem_plurals": check_bool("question_overlap", "stem_plurals", stem_plurals),
    }


context_overlap.prepare_options = _context_overlap_options  # type: ignore[attr-defined]
question_overlap.prepare_options = _question_overlap_options  # type: ignore[attr-defined]


BUILTIN_SCORERS = (
    Scorer("context_overlap", context_overlap),
    Scorer("question_overlap", question_overlap),
)
