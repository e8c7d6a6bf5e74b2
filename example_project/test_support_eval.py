"""The example eval: every row of evals/support.jsonl becomes one test case."""

import pytest

from support_bot import answer


@pytest.mark.llm_eval(
    dataset="evals/support.jsonl",
    target=answer,
    scorers=["contains", ("regex", {"pattern": r"\w+", "name": "non_empty"})],
    thresholds={"contains": 0.80},
)
def test_support_answers(llm_case, llm_eval):
    assert "as an AI" not in llm_eval.output
