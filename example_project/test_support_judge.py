"""An LLM judge grades the answers against the reference (1-5, mapped to [0, 1]), on
evals/judge_sample.jsonl: every fifth row of the golden dataset, since judge calls cost.

The judge model is the plugin's client (ini ``llm_eval_judge_model``); offline, the
loopback server of conftest.py plays it, and its grades are replayed from the recording.
Judge spend is counted apart from the app's.
"""

import pytest

from support_bot import answer


@pytest.mark.llm_eval(
    dataset="evals/judge_sample.jsonl",
    target=answer,
    scorers=["judge:correctness"],
    thresholds={"judge:correctness": 0.8},
)
def test_support_judged(llm_case, llm_eval):
    pass
