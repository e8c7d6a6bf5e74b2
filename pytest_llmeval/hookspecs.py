"""Hook specifications other plugins and conftest.py files implement (``pytest_llmeval_*``)."""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["pytest_llmeval_register_scorers"]


@pytest.hookspec(historic=True)
def pytest_llmeval_register_scorers(registry: Any) -> None:
    """Add scorers to the run's :class:`~pytest_llmeval.scorers.ScorerRegistry`.

    Historic: an implementation in a conftest.py or plugin registered after the run
    started is still called. Example::

        def pytest_llmeval_register_scorers(registry):
            @registry.register("polite", binary=True)
            def polite(output, case):
                return "please" in output.lower()
    """
