"""The ``llm-eval`` command.

- ``llm-eval merge``: recombine shard reports and judge them as one run. Exit codes: 0
  the merged gate passes, 1 it fails, 2 unusable input (a report that is missing,
  invalid, incomplete or incompatible).
- ``llm-eval prompts``: list prompt versions with when they were first seen and their
  blessed results. Exit 0, or 2 on an unreadable prompt or log.
- ``llm-eval html``: render a JSON report as a self-contained HTML page. Exit 0, or 2 on
  an unusable report (or no Jinja2).
- ``llm-eval compare A B``: judge report B against report A with the gate's statistics.
  Exit codes: 0 B passes (no significant drop beyond the allowed one, thresholds met),
  1 it fails, 2 unusable input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import LLMEvalError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-eval", description="pytest-llmeval companion commands")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge shard reports and judge them as one run")
    merge.add_argument("reports", nargs="+", type=Path, help="JSON reports written by pytest --llm-eval-report")
    merge.add_argument("-o", "--output", type=Path, required=True, help="where to write the merged report")
    merge.add_argument("--markdown", type=Path, help="also write a Markdown summary here")
    merge.add_argument("--html", type=Path, help="also write an HTML report here")
    merge.add_argument("--baseline-dir", type=Path, default=Path(".llm-eval"), help="the baseline folder (default .llm-eval)")
    merge.add_argument("--rootdir", type=Path, default=Path("."), help="the pytest rootdir the baseline folder is relative to")
    html = commands.add_parser("html", help="render a JSON report as a self-contained HTML page")
    html.add_argument("report", type=Path, help="a JSON report (pytest --llm-eval-report, llm-eval merge or compare)")
    html.add_argument("-o", "--output", type=Path, required=True, help="where to write the HTML page")
    compare = commands.add_parser("compare", help="judge report B against report A with the gate's statistics")
    compare.add_argument("base", type=Path, help="report A: the reference (stands in for the baseline)")
    compare.add_argument("head", type=Path, help="report B: the run judged against A")
    compare.add_argument("-o", "--output", type=Path, help="write the comparison as a JSON report here")
    compare.add_argument("--markdown", type=Path, help="write a Markdown summary here")
    compare.add_argument("--html", type=Path, help="write an HTML report here")
    compare.add_argument("-v", "--verbose", action="store_true", help="list every case behind a failing metric and every flag")
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
    if args.command == "html":
        return _html(args)
    if args.command == "compare":
        return _compare(args)
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
    if args.html is not None and _write_html("merge", args.html, doc) != 0:
        return 2
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


def _write_html(command: str, path: Path, doc: dict, **kwargs: object) -> int:
    from .reporting.html import write_html

    try:
        write_html(path, doc, **kwargs)  # type: ignore[arg-type]
    except LLMEvalError as exc:
        print(f"llm-eval {command}: {exc}", file=sys.stderr)
        return 2
    return 0


def _html(args: argparse.Namespace) -> int:
    from .reporting.report import load_report

    try:
        doc = load_report(args.report)
    except LLMEvalError as exc:
        print(f"llm-eval html: {exc}", file=sys.stderr)
        return 2
    if _write_html("html", args.output, doc) != 0:
        return 2
    print(f"wrote {args.output} ({sum(len(s['cases']) for s in doc['suites'])} case result(s), verdict {doc['verdict']})")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .fileio import write_atomic
    from .reporting.compare import compare_reports
    from .reporting.markdown import render_markdown
    from .reporting.report import load_report, write_json
    from .reporting.terminal import summary_lines

    try:
        base, head = (str(args.base), load_report(args.base)), (str(args.head), load_report(args.head))
        doc, outcome = compare_reports(base, head)
    except LLMEvalError as exc:
        print(f"llm-eval compare: {exc}", file=sys.stderr)
        return 2
    print(f"{args.head} judged against {args.base}: {doc['verdict'].upper()}")
    for line in summary_lines(outcome, verbose=args.verbose):
        print(line)
    if args.output is not None:
        write_json(args.output, doc)
    if args.markdown is not None:
        write_atomic(args.markdown, render_markdown(doc))
    if args.html is not None and _write_html("compare", args.html, doc, compared_with=str(args.base)) != 0:
        return 2
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
