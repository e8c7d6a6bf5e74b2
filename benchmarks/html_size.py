#!/usr/bin/env python
"""Size of the HTML report for 1,000 cases (target: under 2 MB), and its render time.

A throwaway project in a temp dir holds a JSONL dataset of N cases (a question and an
expected answer of about 60 characters) and an app whose answers run to about
``--output-chars`` characters. Two real runs in subprocesses, as a team would make them:

    python -m pytest -q -p no:cacheprovider --llm-eval-update                (bless the baseline)
    python -m pytest -q -p no:cacheprovider --llm-eval --llm-eval-report r.json
                     --llm-eval-html r.html   with APP_DROP=0.05 (a planted regression)

so the report holds every case's output, its baseline's output (for the diff), scores
and review flags. Then the page is rendered again from r.json in this process
(``llm-eval html``'s code) to time the rendering alone. Prints the JSON report's size,
the HTML page's size, the ratio of the two, the target and the render time.

Usage: python benchmarks/html_size.py [--cases N] [--output-chars C] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_BYTES = 2_000_000

APP = '''
import os, random, pytest

FILLER = "Your order history, invoices and saved addresses stay as they are. "

def app(question, n):
    drop = float(os.environ.get("APP_DROP", "0"))
    ok = n % 20 < 17 and random.Random(f"drop-{n}").random() >= drop
    answer = ("Go to Settings > Account > Reset password" if ok else "Please ask the support team") + f" for account {n}. "
    chars = int(os.environ["OUTPUT_CHARS"])
    return (answer + FILLER * (chars // len(FILLER) + 1))[:chars]

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains", "rouge_l"], thresholds={"contains": 0.8})
def test_support(llm_case, llm_eval):
    pass
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--output-chars", type=int, default=400, help="length of each app answer (the report keeps up to 1000)")
    parser.add_argument("--keep", action="store_true", help="keep the temp project and print its path")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="llm-eval-html-size-"))
    try:
        with (folder / "data.jsonl").open("w", encoding="utf-8") as out:
            for n in range(args.cases):
                out.write(json.dumps({"id": f"case-{n:05d}", "inputs": {"question": f"How do I reset the password of account {n}?", "n": n},
                                      "expected": "Settings > Account > Reset password"}) + "\n")
        (folder / "test_support.py").write_text(APP, encoding="utf-8")
        env = {**os.environ, "OUTPUT_CHARS": str(args.output_chars)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        subprocess.run([*command, "--llm-eval-update"], cwd=folder, env=env, check=True, capture_output=True)
        started = time.perf_counter()
        run = subprocess.run([*command, "--llm-eval", "--llm-eval-report=r.json", "--llm-eval-html=r.html"], check=False, cwd=folder,
                             env={**env, "APP_DROP": "0.05"}, capture_output=True, text=True)
        run_wall = time.perf_counter() - started
        if run.returncode not in (0, 1):
            print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
            return 2

        from pytest_llmeval.reporting.html import build_page, render_html
        from pytest_llmeval.reporting.report import load_report

        doc = load_report(folder / "r.json")
        started = time.perf_counter()
        render_html(build_page(doc))
        render_s = time.perf_counter() - started
        html_bytes = (folder / "r.html").stat().st_size
        json_bytes = (folder / "r.json").stat().st_size
        cases = sum(len(s["cases"]) for s in doc["suites"])
        flagged = sum(len(s["review"]) for s in doc["suites"])
        print(f"cases: {cases} (outputs of {args.output_chars} characters, baseline outputs kept for the diff), "
              f"{flagged} flagged for review, verdict {doc['verdict']}")
        print(f"JSON report: {json_bytes:,} bytes")
        print(f"HTML report: {html_bytes:,} bytes ({html_bytes / json_bytes:.2f}x the JSON report, "
              f"{html_bytes / cases:,.0f} bytes per case)")
        print(f"target: < {TARGET_BYTES:,} bytes: {'met' if html_bytes < TARGET_BYTES else 'MISSED'} "
              f"({html_bytes / TARGET_BYTES:.2f} of the target)")
        print(f"render from the JSON report: {render_s * 1000:.0f} ms (build_page + Jinja2); whole eval run {run_wall:.1f} s")
        return 0 if html_bytes < TARGET_BYTES else 1
    finally:
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
