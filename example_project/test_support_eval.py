"""The support assistant's golden dataset: every row of evals/support.jsonl is one case.

Offline scorers (does the answer hold the row's key fact, is it non-empty), a must-pass
row, and the usage budgets of pyproject.toml (error rate, latency, cost per case, token
growth against the baseline).
"""

import pytest

from support_bot import answer


@pytest.mark.llm_eval(
    dataset="evals/support.jsonl",
    target=answer,
    scorers=["contains", ("regex", {"pattern": r"\w+", "name": "non_empty"})],
    thresholds={"contains": 0.85},
)
def test_support_answers(llm_case, llm_eval):
    assert "as an AI" not in llm_eval.output
