"""The ``llm-eval-check`` command line.

``llm-eval-check CONFIG [--report REPORT] [--format text|json|junit] [-o FILE]
[--prompt-log LOG]`` checks a config (and cross-checks it against a report).
Exit codes: 0 may ship (warnings at most), 1 findings that block, 2 unusable input
(a config or report that cannot be read, parsed or validated).

``llm-eval-check CONFIG --canary --report REPORT --control SUITE --candidate SUITE
[--current-stage PCT] [--stage-minutes M]`` decides a canary stage. Exit codes: 0 promote,
1 roll back, 3 hold, 2 unusable input (including a config with blocking findings: no
decision is made from a broken config).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]

EXIT_SHIP, EXIT_BLOCK, EXIT_UNUSABLE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-eval-check",
        description="Check an llmops-config.yaml (routing, gates, canary, flags, budgets) and cross-check it "
                    "against a pytest-llmeval JSON report. Exit 0 ship, 1 blocked, 2 unusable input; "
                    "with --canary: 0 promote, 1 roll back, 3 hold, 2 unusable input.")
    parser.add_argument("config", type=Path, help="the llmops-config.yaml")
    parser.add_argument("--report", type=Path, help="JSON report written by pytest --llm-eval-report")
    parser.add_argument("--shadow", type=Path, help="shadow comparison written by `llm-eval shadow -o FILE`: the "
                                                    "cutover ships only when it allows it")
    parser.add_argument("--format", choices=("text", "json", "junit"), default="text", help="output format (default text)")
    parser.add_argument("-o", "--output", type=Path,
                        help="write the chosen format to this file (stdout then shows the text form)")
    parser.add_argument("--prompt-log", type=Path,
                        help="prompt log for pinned versions (default: .llm-eval/prompt-log.jsonl next to the config)")
    canary = parser.add_argument_group("canary decision")
    canary.add_argument("--canary", action="store_true", help="decide promote / hold / roll back (needs --report, "
                                                               "--control, --candidate)")
    canary.add_argument("--control", metavar="SUITE_ID", help="suite id of the control (what serves traffic now)")
    canary.add_argument("--candidate", metavar="SUITE_ID", help="suite id of the candidate")
    canary.add_argument("--current-stage", type=float, metavar="PCT",
                        help="the stage the canary is at now (one of canary.stages); default: not started")
    canary.add_argument("--stage-minutes", type=float, metavar="M",
                        help="how long the current stage has run (held until canary.min_stage_duration_minutes)")
    return parser


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from ..fileio import write_atomic

    write_atomic(output, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.canary:
        missing = [flag for flag, value in (("--report", args.report), ("--control", args.control),
                                            ("--candidate", args.candidate)) if value is None]
        if missing:
            parser.error(f"--canary needs {', '.join(missing)}")
        return _canary(args)
    for flag in ("control", "candidate", "current_stage", "stage_minutes"):
        if getattr(args, flag) is not None:
            parser.error(f"--{flag.replace('_', '-')} only goes with --canary")
    return _check(args)


def _unusable(message: str) -> int:
    print(f"llm-eval-check: {message}", file=sys.stderr)
    return EXIT_UNUSABLE


def _check(args: argparse.Namespace) -> int:
    from ..errors import LLMEvalError
    from . import check
    from .findings import render_json, render_junit, render_text

    try:
        result = check(args.config, args.report, args.prompt_log, args.shadow)
    except LLMEvalError as exc:
        return _unusable(str(exc))
    render = {"text": render_text, "json": render_json, "junit": render_junit}[args.format]
    try:
        _emit(render(result), args.output)
    except OSError as exc:
        return _unusable(f"cannot write {args.output}: {exc}")
    if args.output is not None:
        sys.stdout.write(render_text(result))  # the CI log still shows the findings
    return result.exit_code


def _canary(args: argparse.Namespace) -> int:
    from ..errors import LLMEvalError
    from ..reporting.report import load_report
    from . import config_only_findings, load_config
    from .canary import CanaryPolicy, decide, render_canary_json, render_canary_junit, render_canary_text
    from .findings import sort_findings

    try:
        config = load_config(args.config)
        findings = sort_findings(config_only_findings(config))
        errors = [f for f in findings if f.blocks]
        if errors:
            for f in findings:
                print(str(f), file=sys.stderr)
            return _unusable(f"{args.config}: {len(errors)} blocking finding(s): fix the config before deciding a canary")
        report = load_report(args.report)
        policy = CanaryPolicy.from_config(config)
        decision = decide(report, args.control, args.candidate, policy,
                          current_stage=args.current_stage, stage_minutes=args.stage_minutes)
    except LLMEvalError as exc:
        return _unusable(str(exc))
    render = {"text": render_canary_text, "json": render_canary_json, "junit": render_canary_junit}[args.format]
    try:
        _emit(render(decision, findings), args.output)
    except OSError as exc:
        return _unusable(f"cannot write {args.output}: {exc}")
    if args.output is not None:
        sys.stdout.write(render_canary_text(decision, findings))
    return decision.exit_code


if __name__ == "__main__":
    sys.exit(main())
