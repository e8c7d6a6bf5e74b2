"""Re-records the committed model answers (.llm-eval/cache) and re-blesses the baselines.

Run it after changing the app, the prompts, the dataset or fake_model.py; review the diff
(`git diff --stat .llm-eval`) and commit it. It starts from an empty cache, so answers
nothing asks for any more do not linger:

1. ``pytest --llm-eval --llm-eval-cache=write --llm-eval-update``: every suite's calls
   (app, judge, both prompt variants), answered by the loopback model; baselines blessed.
2. the same two suites with ``SUPPORT_BOT_PROMPT=support_answer_concise``, not blessed: the
   planted "be concise" regression (README.md) then replays offline as well.

    python tools/record.py            # from example_project/
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pytest(*args: str, expect: tuple[int, ...] = (0,), **env: str) -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--llm-eval", "--llm-eval-cache=write", *args]
    print("$", " ".join(f"{k}={v}" for k, v in env.items()), " ".join(command[1:]), flush=True)
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env})
    if done.returncode not in expect:
        raise SystemExit(f"exit code {done.returncode}: fix the run before committing its recording")


if __name__ == "__main__":
    if os.environ.get("OPENAI_BASE_URL"):
        raise SystemExit("unset OPENAI_BASE_URL: the recording is made against the loopback model")
    shutil.rmtree(ROOT / ".llm-eval" / "cache", ignore_errors=True)
    pytest("--llm-eval-update")
    # exit 1: the concise prompt's run fails its gate, as it should
    pytest("test_support_eval.py", "test_support_judge.py", expect=(1,), SUPPORT_BOT_PROMPT="support_answer_concise")
