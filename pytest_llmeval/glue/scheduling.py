"""xdist scheduling that keeps every eval suite on one worker.

A suite's app calls are started together by its runner; if xdist spread the suite's
items over workers, each worker would start (and pay for) calls for items it never
runs. Items of one parametrized function form one scope; other items are scopes of
their own, so they spread as with ``--dist load``. Imported only under xdist.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

__all__ = ["SuiteScheduling"]


class SuiteScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return nodeid.partition("[")[0]
