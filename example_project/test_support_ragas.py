"""A ragas metric as a scorer, when the ``ragas`` extra is installed
(``pip install "pytest-llmeval[ragas]"``); skipped, with that reason, otherwise.

``RougeScore`` needs no model, so the suite stays offline.
"""

import pytest

from support_bot import answer

pytest.importorskip("ragas", reason="the ragas suite needs pip install 'pytest-llmeval[ragas]'")


@pytest.mark.llm_eval(
    dataset="evals/support.jsonl",
    target=answer,
    scorers=[("ragas:RougeScore", {"rouge_type": "rouge1", "mode": "recall", "name": "rouge1_recall"})],
)
def test_support_ragas(llm_case, llm_eval):
    pass
