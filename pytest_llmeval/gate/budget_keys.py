"""Budget names, their defaults and the check of configured values (ini ``llm_eval_budgets``,
the marker's ``budgets=``).

Kept apart from :mod:`pytest_llmeval.gate.budgets` (which judges usage against them)
because ``parse_budgets`` runs at every pytest start-up: pytest sends every module an
installed plugin imports through its assertion rewriter, which, where it cannot cache
(PYTHONDONTWRITEBYTECODE), parses and compiles the module's source on every run.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from ..errors import ConfigError

__all__ = ["BUDGET_KEYS", "DEFAULT_BUDGETS", "parse_budgets"]

BUDGET_KEYS = {
    "max_cost_per_case": "mean cost per case in USD (priced, uncached calls)",
    "max_latency_p95_ms": "95th percentile of the per-case app latency, in ms",
    "max_error_rate": "share of cases whose app call failed, in [0, 1]",
    "max_output_tokens_increase": "allowed growth of mean app output tokens per case vs the baseline, as a fraction",
    "max_input_tokens_increase": "allowed growth of mean app input tokens per case vs the baseline, as a fraction",
}
DEFAULT_BUDGETS = {"max_output_tokens_increase": 0.5, "max_input_tokens_increase": 0.5}


def parse_budgets(values: Mapping[str, Any], where: str) -> dict[str, float]:
    """Validate budget names and values; ConfigError naming ``where`` otherwise."""
    budgets: dict[str, float] = {}
    for name, value in values.items():
        if name not in BUDGET_KEYS:
            import difflib

            close = difflib.get_close_matches(str(name), BUDGET_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(BUDGET_KEYS)}"
            raise ConfigError(f"{where}: unknown budget {name!r}{hint}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: budget {name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or math.isnan(number) or number < 0 or (name == "max_error_rate" and number > 1):
            raise ConfigError(f"{where}: budget {name} must be {'in [0, 1]' if name == 'max_error_rate' else '>= 0'}, got {value!r}")
        budgets[name] = number
    return budgets
