"""The ``llm-eval`` command.

- ``llm-eval merge``: recombine shard reports and judge them as one run. Exit codes: 0
  the merged gate passes, 1 it fails, 2 unusable input (a report that is missing,
  invalid, incomplete or incompatible).
- ``llm-eval prompts``: list prompt versions with when they were first seen and their
  blessed results. Exit 0, or 2 on an unreadable prompt or log.
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
    prompts = commands.add_parser("prompts", help="list prompt versions and their blessed eval results")
    prompts.add_argument("--dir", type=Path, default=Path("prompts"), help="the prompt folder (default prompts)")
    prompts.add_argument("--log", type=Path, default=Path(".llm-eval/prompt-log.jsonl"), help="the prompt log")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "merge":
        return _merge(args)
    if args.command == "prompts":
        return _prompts(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _merge(args: argparse.Namespace) -> int:
    from .fileio import write_atomic
    from .gate.baseline import BaselineStore
    from .reporting.markdown import render_markdown
    from .reporting.merge import merge_reports
    from .reporting.progress import refuse_unsafe_outputs
    from .reporting.report import load_report, write_json

    try:
        if any(path.resolve() == args.output.resolve() for path in args.reports):
            raise LLMEvalError(f"{args.output}: the output is one of the reports to merge; write it elsewhere")
        refuse_unsafe_outputs({"report": args.output, "markdown": args.markdown})
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
        failures = [reason for metric in suite["metrics"] for reason in metric["reasons"]]
        failures += [gate["message"] for gate in suite["usage_gates"] if gate["verdict"] == "fail"]
        failures += [f"case {case_id} errored" for case_id in suite["errors"]]
        failures += [f"case {case_id} failed" for case_id in suite["failed_cases"]]
        for failure in failures:
            print(f"  {suite['suite_id']}: {failure}")
    return 0 if doc["verdict"] == "pass" else 1


def _prompts(args: argparse.Namespace) -> int:
    from .prompts import PromptLog, PromptRegistry

    try:
        registry = PromptRegistry(args.dir)
        current = {name: registry.get(name) for name in registry.names()}
        log = PromptLog(args.log)
        entries = log.entries()
    except LLMEvalError as exc:
        print(f"llm-eval prompts: {exc}", file=sys.stderr)
        return 2
    for warning in log.warnings:
        print(f"llm-eval prompts: warning: {warning}", file=sys.stderr)
    versions: dict[tuple[str, str], list[dict]] = {}
    for entry in entries:
        versions.setdefault((entry["name"], entry["version"]), []).append(entry)
    for name, prompt in current.items():
        versions.setdefault((name, prompt.version), [])
    for (name, version), seen in sorted(versions.items(), key=lambda kv: (kv[0][0], kv[1][0]["at"] if kv[1] else "~")):
        prompt = current.get(name)
        marks = []
        if prompt is not None and prompt.version == version:
            marks.append("current" + (f", label {prompt.label}" if prompt.label else ""))
        line = f"{name} {version}"
        if seen:
            line += f"  first seen {seen[0]['at']}"
            last = seen[-1]
            scores = ", ".join(f"{m} {v:.3f}" for m, v in sorted(last.get("metrics", {}).items()))
            line += f"  last blessed: {last.get('verdict', '?')} in {last.get('suite', '?')}" + (f" ({scores})" if scores else "")
        else:
            line += "  never blessed"
        if marks:
            line += f"  [{'; '.join(marks)}]"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
