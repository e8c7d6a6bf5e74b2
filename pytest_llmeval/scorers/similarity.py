"""Built-in continuous scorers comparing the output to the row's ``expected`` text:
token_f1, rouge_l, bleu, levenshtein.

Each returns a float in [0, 1] (the gate uses a paired test for continuous metrics). A
list as ``expected`` holds alternative references: ``token_f1``, ``rouge_l`` and
``levenshtein`` take the best score over them (as SQuAD and rouge-score's
``score_multi`` do); ``bleu`` passes them all to BLEU as multiple references.

Where a reference implementation exists it is either used at run time or matched:

- ``bleu``: sacrebleu's sentence BLEU, used at run time (imported lazily), divided by 100.
- ``levenshtein``: rapidfuzz's ``Levenshtein.normalized_similarity``, used at run time
  (imported lazily).
- ``token_f1``: the SQuAD v1.1 evaluation script's ``normalize_answer``/``f1_score``,
  reimplemented here (a dozen lines; there is no package to depend on).
- ``rouge_l``: rouge-score's ``RougeScorer(["rougeL"])`` F-measure with its default
  tokenizer and no stemming, reimplemented here (the tokenizer is three regexes; the
  package pulls in nltk and absl). tests/test_scorer_references.py checks agreement.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Any

from ..errors import ScorerError
from ..models import Case
from ._common import ASCII_PUNCTUATION, check_bool, check_choice, check_number, collapse_whitespace, references, text_of
from .base import Scorer

__all__ = [
    "BUILTIN_SCORERS",
    "bleu",
    "lcs_length",
    "levenshtein",
    "rouge_l",
    "rouge_tokenize",
    "squad_normalize",
    "token_f1",
]


# --- token_f1: SQuAD v1.1 -------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """SQuAD's ``normalize_answer``: lower case, drop ASCII punctuation, drop the articles
    a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in ASCII_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _f1(prediction: list[str], truth: list[str]) -> float:
    same = sum((Counter(prediction) & Counter(truth)).values())
    if same == 0:
        return 0.0
    precision = same / len(prediction)
    recall = same / len(truth)
    return 2 * precision * recall / (precision + recall)


def token_f1(output: Any, case: Case) -> float:
    """SQuAD-style token F1 between the normalised output and ``expected`` (max over a
    list of answers). Like SQuAD v1.1, an empty answer or reference scores 0.0."""
    prediction = squad_normalize(text_of(output)).split()
    return max(_f1(prediction, squad_normalize(truth).split()) for truth in references(case, "token_f1"))


# --- rouge_l: rouge-score's rougeL --------------------------------------------------

_NON_ALPHANUM = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")


def rouge_tokenize(text: str) -> list[str]:
    """rouge-score's default tokenizer without stemming: ``str.lower``, every run of
    characters outside ``[a-z0-9]`` becomes a space, split (non-ASCII letters vanish)."""
    text = _NON_ALPHANUM.sub(" ", text.lower())
    return [token for token in _SPACES.split(text) if _VALID_TOKEN.match(token)]


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists (O(len(a)*len(b)) time,
    O(min) memory)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _rouge_l_f(prediction: list[str], target: list[str]) -> float:
    if not prediction or not target:
        return 0.0
    lcs = lcs_length(target, prediction)
    precision, recall = lcs / len(prediction), lcs / len(target)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def rouge_l(output: Any, case: Case) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens) between the output and
    ``expected`` (max over a list). An empty output or reference scores 0.0, as in
    rouge-score."""
    prediction = rouge_tokenize(text_of(output))
    return max(_rouge_l_f(prediction, rouge_tokenize(target)) for target in references(case, "rouge_l"))


# --- bleu: sacrebleu ----------------------------------------------------------------

_SMOOTH_METHODS = ("exp", "floor", "add-k", "none")


@lru_cache(maxsize=32)
def _bleu_metric(tokenize: str, smooth_method: str, smooth_value: float | None, lowercase: bool) -> Any:
    """One sacrebleu ``BLEU`` object per option set (building one per call is 10x slower)."""
    try:
        from sacrebleu.metrics import BLEU  # lazy: sacrebleu imports numpy, lxml, regex
    except ImportError as exc:  # pragma: no cover - sacrebleu is a dependency
        raise ScorerError(f"scorer 'bleu' needs the package sacrebleu: {exc}") from None
    try:
        return BLEU(
            lowercase=lowercase,
            tokenize=tokenize,
            smooth_method=smooth_method,
            smooth_value=smooth_value,
            effective_order=True,
        )
    except Exception as exc:
        raise ScorerError(f"scorer 'bleu': sacrebleu rejected the options: {type(exc).__name__}: {exc}") from None


def bleu(
    output: Any,
    case: Case,
    *,
    tokenize: str = "13a",
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
) -> float:
    """Sentence BLEU (sacrebleu ``sentence_bleu`` defaults: 13a tokenizer, exponential
    smoothing, effective order) of the output against ``expected`` (a list is several
    references), scaled from 0-100 to [0, 1]."""
    metric = _bleu_metric(tokenize, smooth_method, smooth_value, lowercase)
    result = metric.sentence_score(text_of(output), references(case, "bleu"))
    return min(1.0, max(0.0, result.score / 100.0))


def _bleu_options(tokenize: Any = "13a", smooth_method: Any = "exp", smooth_value: Any = None, lowercase: Any = False) -> dict[str, Any]:
    if not isinstance(tokenize, str):
        raise ScorerError(f"scorer 'bleu': option 'tokenize' must be a sacrebleu tokenizer name, got {tokenize!r}")
    options = {
        "tokenize": tokenize,
        "smooth_method": check_choice("bleu", "smooth_method", smooth_method, _SMOOTH_METHODS),
        "smooth_value": None if smooth_value is None else check_number("bleu", "smooth_value", smooth_value),
        "lowercase": check_bool("bleu", "lowercase", lowercase),
    }
    _bleu_metric(**options)  # fail at collection on a tokenizer sacrebleu does not know
    return options


bleu.prepare_options = _bleu_options  # type: ignore[attr-defined]


# --- levenshtein: rapidfuzz ---------------------------------------------------------

def levenshtein(output: Any, case: Case, *, case_sensitive: bool = True, normalize_whitespace: bool = False) -> float:
    """Normalised Levenshtein similarity ``1 - distance / max(len)`` over characters
    (rapidfuzz), max over a list of references; two empty strings score 1.0."""
    from rapidfuzz.distance import Levenshtein  # lazy

    def prepare(text: str) -> str:
        if normalize_whitespace:
            text = collapse_whitespace(text).strip()
        return text if case_sensitive else text.casefold()

    got = prepare(text_of(output))
    return max(Levenshtein.normalized_similarity(got, prepare(want)) for want in references(case, "levenshtein"))


def _levenshtein_options(case_sensitive: Any = True, normalize_whitespace: Any = False) -> dict[str, Any]:
    return {
        "case_sensitive": check_bool("levenshtein", "case_sensitive", case_sensitive),
        "normalize_whitespace": check_bool("levenshtein", "normalize_whitespace", normalize_whitespace),
    }


levenshtein.prepare_options = _levenshtein_options  # type: ignore[attr-defined]


BUILTIN_SCORERS = (
    Scorer("token_f1", token_f1),
    Scorer("rouge_l", rouge_l),
    Scorer("bleu", bleu),
    Scorer("levenshtein", levenshtein),
)
