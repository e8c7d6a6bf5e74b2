"""The ``llm-eval`` command: ``llm-eval merge`` recombines shard reports.

Exit codes: 0 the merged gate passes, 1 it fails, 2 unusable input (a report that is
missing, invalid, incomplete or incompatible).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .errors import LLMEvalError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-eval", description="pytest-llmeval companion commands")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge shard reports and judge them as one run")
    merge.add_argument("reports", nargs="+", type=Path, help="JSON reports written by pytest --llm-eval-report")
    merge.add_argument("-o", "--output", type=Path, required=True, help="where to write the merged report")
    merge.add_argument("--markdown", type=Path, help="also write a Markdown summary here")
    merge.add_argument("--baseline-dir", type=Path, default=Path(".llm-eval"), help="the baseline folder (default .llm-eval)")
    merge.add_argument("--rootdir", type=Path, default=Path("."), help="the pytest rootdir the baseline folder is relative to")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "merge":
        return _merge(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _merge(args: argparse.Namespace) -> int:
    from .baseline import BaselineStore
    from .fileio import write_atomic
    from .markdown import render_markdown
    from .merge import merge_reports
    from .report import load_report, write_json

    try:
        reports = [(str(path), load_report(path)) for path in args.reports]
        root = args.rootdir.resolve()
        baseline_dir = args.baseline_dir if args.baseline_dir.is_absolute() else root / args.baseline_dir
        doc = merge_reports(reports, BaselineStore(baseline_dir, root))
    except LLMEvalError as exc:
        print(f"llm-eval merge: {exc}", file=sys.stderr)
        return 2
    write_json(args.output, doc)
    if args.markdown is not None:
        write_atomic(args.markdown, render_markdown(doc))
    cases = sum(len(suite["cases"]) for suite in doc["suites"])
    print(f"merged {len(reports)} report(s): {len(doc['suites'])} suite(s), {cases} case result(s); verdict {doc['verdict']}")
    for suite in doc["suites"]:
        for metric in suite["metrics"]:
            for reason in metric["reasons"]:
                print(f"  {suite['suite_id']}: {reason}")
    return 0 if doc["verdict"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
