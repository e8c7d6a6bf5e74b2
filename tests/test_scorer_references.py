"""The similarity scorers against their reference implementations, on generated pairs.

Each check runs a few hundred seeded random (output, expected) pairs drawn from a small
vocabulary with mixed case, punctuation glued to words and standing alone, articles,
digits, a few non-ASCII words, repeated words, odd whitespace and empty strings. Half of
the outputs are mutations of their reference (words dropped, swapped, replaced,
re-cased), so the scores cover the whole of [0, 1] rather than piling up at 0.

- rouge_l      vs rouge-score ``RougeScorer(["rougeL"])`` F-measure (reimplemented here:
               default tokenizer, no stemming, as RougeScorer's default)
- bleu         vs sacrebleu ``sentence_bleu`` / 100 (sacrebleu is used at run time)
- token_f1     vs the SQuAD v1.1 evaluation script, copied below as the reference
- levenshtein  vs rapidfuzz ``Levenshtein.normalized_similarity`` (used at run time) and
               an independent dynamic-programming edit distance

Agreement is asserted within 1e-6 (in practice every pair agrees exactly).
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter

import pytest
import sacrebleu
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer

from pytest_llmeval.models import Case
from pytest_llmeval.scorers import default_registry

TOLERANCE = 1e-6
N_PAIRS = 400

VOCABULARY = [
    "the", "The", "THE", "a", "A", "an", "An", "cat", "Cat", "cats", "dog", "dogs", "sat", "on", "mat",
    "refund", "refunds", "Refund", "card", "cards", "14", "days", "30", "3.5", "1,000", "order", "#12345",
    "is", "not", "NOT", "never", "Paris", "paris", "London", "capital", "of", "France", "café", "naïve",
    "Straße", "İstanbul", "e-mail", "don't", "it's", "U.S.", "x", "y", "z",
]
PUNCTUATION = [".", ",", "!", "?", ";", ":", "-", "(", ")", '"', "'", "...", "—", "/", "%", "$"]
SEPARATORS = [" ", " ", " ", " ", "  ", "\t", "\n", " - "]


def random_sentence(rng: random.Random, max_words: int = 14) -> str:
    n = rng.choice([0, 0, 1, 2]) if rng.random() < 0.08 else rng.randint(1, max_words)
    words = []
    for _ in range(n):
        word = rng.choice(VOCABULARY)
        roll = rng.random()
        if roll < 0.15:
            word += rng.choice(PUNCTUATION)
        elif roll < 0.22:
            word = rng.choice(PUNCTUATION) + word
        elif roll < 0.27:
            word = rng.choice(PUNCTUATION)
        words.append(word)
    if words and rng.random() < 0.2:  # repeated words
        words += [rng.choice(words)] * rng.randint(1, 3)
    text = ""
    for i, word in enumerate(words):
        text += (rng.choice(SEPARATORS) if i else "") + word
    if rng.random() < 0.1:
        text = rng.choice([" ", "\n", "  "]) + text + rng.choice(["", " ", "\n"])
    return text


def mutate(rng: random.Random, text: str) -> str:
    words = text.split()
    for _ in range(rng.randint(0, 3)):
        if not words:
            break
        i = rng.randrange(len(words))
        op = rng.choice(["drop", "swap", "replace", "upper", "insert"])
        if op == "drop":
            del words[i]
        elif op == "swap":
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        elif op == "replace":
            words[i] = rng.choice(VOCABULARY)
        elif op == "upper":
            words[i] = words[i].upper()
        else:
            words.insert(i, rng.choice(VOCABULARY))
    return " ".join(words)


def generated_pairs(seed: int, n: int = N_PAIRS) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for k in range(n):
        reference = random_sentence(rng)
        output = mutate(rng, reference) if k % 2 else random_sentence(rng)
        pairs.append((output, reference))
    pairs += [("", ""), ("", "cat"), ("cat", ""), ("...", "!!"), ("the a an", "the"), ("Cat", "cat"), ("cat cat cat", "cat")]
    return pairs


def generated_multi(seed: int, n: int = 100) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        refs = [random_sentence(rng) for _ in range(rng.randint(1, 4))]
        out.append((mutate(rng, rng.choice(refs)), refs))
    return out


def scorer(name: str, **options):
    [bound] = default_registry().bind([(name, options)] if options else [name])
    return lambda output, expected: bound(output, Case(id="gen", inputs={}, expected=expected))


def compare(name, ours, reference, pairs):
    """Max absolute difference; fails listing the first disagreeing pairs."""
    diffs = [(abs(ours(o, e) - reference(o, e)), o, e) for o, e in pairs]
    bad = [d for d in diffs if d[0] > TOLERANCE]
    assert not bad, f"{name}: {len(bad)} of {len(pairs)} pairs disagree, e.g. {bad[:3]}"
    return max(d[0] for d in diffs)


def assert_spread(scores):
    """The pairs exercise the metric: scores at 0, at 1 and strictly between."""
    inside = sum(1 for s in scores if 0.0 < s < 1.0)
    assert inside >= len(scores) // 4, f"only {inside} of {len(scores)} scores strictly inside (0, 1)"
    assert 0.0 in scores and 1.0 in scores


# --- rouge_l ------------------------------------------------------------------------


def test_rouge_l_agrees_with_rouge_score():
    reference = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    ours = scorer("rouge_l")
    pairs = generated_pairs(seed=1)
    compare("rouge_l", ours, lambda o, e: reference.score(e, o)["rougeL"].fmeasure, pairs)
    assert_spread([ours(o, e) for o, e in pairs])


def test_rouge_l_with_several_references_agrees_with_score_multi():
    reference = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    compare("rouge_l (multi)", scorer("rouge_l"), lambda o, refs: reference.score_multi(refs, o)["rougeL"].fmeasure, generated_multi(seed=2))


# --- bleu ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"lowercase": True}, {"tokenize": "intl"}, {"tokenize": "char"}, {"smooth_method": "add-k", "smooth_value": 1}, {"smooth_method": "floor"}],
    ids=["defaults", "lowercase", "intl", "char", "add-k", "floor"],
)
def test_bleu_agrees_with_sacrebleu_sentence_bleu(options):
    ours = scorer("bleu", **options)
    sacre = {"use_effective_order": True, **options}

    def reference(o, e):
        refs = e if isinstance(e, list) else [e]
        return sacrebleu.sentence_bleu(o, refs, **sacre).score / 100

    pairs = generated_pairs(seed=3)
    compare("bleu", ours, reference, pairs)
    compare("bleu (multi)", ours, reference, generated_multi(seed=4))
    if not options:
        assert_spread([ours(o, e) for o, e in pairs])


# --- token_f1 -----------------------------------------------------------------------
# Reference: the official SQuAD v1.1 evaluation script (evaluate-v1.1.py, Rajpurkar et
# al. 2016): normalize_answer, f1_score and metric_max_over_ground_truths, copied here
# as they are in the script.


def squad_normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1_score(prediction, ground_truth):
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def squad_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def test_token_f1_agrees_with_the_squad_v1_1_script():
    ours = scorer("token_f1")
    pairs = generated_pairs(seed=5)
    compare("token_f1", ours, squad_f1_score, pairs)
    compare(
        "token_f1 (multi)",
        ours,
        lambda o, refs: squad_metric_max_over_ground_truths(squad_f1_score, o, refs),
        generated_multi(seed=6),
    )
    assert_spread([ours(o, e) for o, e in pairs])


# --- levenshtein --------------------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Textbook Wagner-Fischer, independent of rapidfuzz."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_levenshtein_agrees_with_rapidfuzz_and_a_plain_edit_distance():
    ours = scorer("levenshtein")
    pairs = generated_pairs(seed=7)
    compare("levenshtein", ours, Levenshtein.normalized_similarity, pairs)
    compare(
        "levenshtein (dp)",
        ours,
        lambda o, e: 1.0 if not (o or e) else 1 - edit_distance(o, e) / max(len(o), len(e)),
        pairs,
    )
    compare(
        "levenshtein (multi)",
        ours,
        lambda o, refs: max(Levenshtein.normalized_similarity(o, r) for r in refs),
        generated_multi(seed=8),
    )
    folded = scorer("levenshtein", case_sensitive=False)
    compare("levenshtein (case)", folded, lambda o, e: Levenshtein.normalized_similarity(o.casefold(), e.casefold()), pairs)
    assert_spread([ours(o, e) for o, e in pairs])
