"""A/B: the current prompt against its "be concise" edit, on the same cases.

Each case runs under both variants; the comparison is paired (exact McNemar per case),
Holm-corrected, with cost and output tokens beside quality. The baseline regression gate
applies to the control only.
"""

import pytest

from support_bot import answer


@pytest.mark.llm_eval(
    dataset="evals/support.jsonl",
    target=answer,
    scorers=["contains"],
    variants={"control": {"prompt": "support_answer"}, "concise": {"prompt": "support_answer_concise"}},
    min_effect=0.03,
)
def test_support_prompt_ab(llm_case, llm_eval):
    pass
