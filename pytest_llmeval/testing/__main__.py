"""``python -m pytest_llmeval.testing``: run the loopback LLM server (same options as
``python -m pytest_llmeval.testing.server``)."""

from __future__ import annotations

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
