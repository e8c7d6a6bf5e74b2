"""The ``llm-eval`` command.

- ``llm-eval merge``: recombine shard reports and judge them as one run (``--history``
  records it in the run history). Exit codes: 0 the merged gate passes, 1 it fails, 2
  unusable input (a report that is missing, invalid, incomplete or incompatible, or an
  unusable history database).
- ``llm-eval prompts``: list prompt versions with when they were first seen and their
  blessed results. Exit 0, or 2 on an unreadable prompt or log.
- ``llm-eval html``: render a JSON report as a self-contained HTML page. Exit 0, or 2 on
  an unusable report (or no Jinja2).
- ``llm-eval compare A B``: judge report B against report A with the gate's statistics.
  Exit codes: 0 B passes (no significant drop beyond the allowed one, thresholds met),
  1 it fails, 2 unusable input.
- ``llm-eval history``: quality trend per suite and metric from the run history, with the
  7-day moving average, the baseline and the monitoring alerts. Exit 0 no alert, 1 an
  alert fired in the window, 2 unusable input (no database, bad config).
- ``llm-eval shadow LOG [LOG]``: score blue/green outputs of logged traffic with the same
  scorers and paired statistics; exit 0 the cutover may go ahead, 1 it is blocked,
  3 too little data to decide, 2 unusable input.
- ``llm-eval cost LOG``: daily spend by feature, model and segment from request logs;
  exit 1 when a day passes ``cost_alert_threshold x daily_cost_budget``, 2 unusable input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ConfigError, LLMEvalError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-eval", description="pytest-llmeval companion commands")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="merge shard reports and judge them as one run")
    merge.add_argument("reports", nargs="+", type=Path, help="JSON reports written by pytest --llm-eval-report")
    merge.add_argument("-o", "--output", type=Path, required=True, help="where to write the merged report")
    merge.add_argument("--markdown", type=Path, help="also write a Markdown summary here")
    merge.add_argument("--html", type=Path, help="also write an HTML report here")
    merge.add_argument("--baseline-dir", type=Path, help="the baseline folder (default: the one the reports recorded, "
                       "else ./.llm-eval; merge refuses to judge without one)")
    merge.add_argument("--rootdir", type=Path, default=Path("."), help="the pytest rootdir a relative --baseline-dir is relative to")
    merge.add_argument("--history", nargs="?", const="", metavar="URL",
                       help="record the merged run in the run history: a database URL or SQLite file; without a value "
                            "the ini llm_eval_history of --rootdir's pyproject.toml, else .llm-eval/history.sqlite "
                            "(ini llm_eval_history_cases and llm_eval_history_alerts apply; needs the history extra)")
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
    _add_monitoring_commands(commands)
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
    if args.command in _MONITORING_COMMANDS:
        return _MONITORING_COMMANDS[args.command](args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _baseline_dir(args: argparse.Namespace, reports: list, root: Path) -> Path:
    """Where the baselines are, in this order: --baseline-dir; the folder the reports recorded,
    when it exists or its project is on this machine (a project with no baseline yet: its
    suites say "no baseline"); ./.llm-eval when it exists (merging in a checkout reports made
    elsewhere, e.g. CI artifacts); ./.llm-eval for reports that recorded none (older reports).
    Otherwise the recorded project is not on this machine and there is no checkout here:
    LLMEvalError (exit 2), never a judgement without baselines."""
    if args.baseline_dir is not None:
        return args.baseline_dir if args.baseline_dir.is_absolute() else root / args.baseline_dir
    recorded = [Path(p) for p in sorted({doc["run"]["baseline_dir"] for _, doc in reports if doc["run"].get("baseline_dir")})]
    for candidate in [*[r for r in recorded if r.is_dir()], *[r for r in recorded if r.parent.is_dir()]]:
        return candidate
    if (root / ".llm-eval").is_dir() or not recorded:
        return root / ".llm-eval"
    raise LLMEvalError(f"cannot find the baseline folder: the reports recorded {', '.join(map(str, recorded))}, whose "
                       f"project is not on this machine, and there is no {root / '.llm-eval'}; run merge in the checkout "
                       "or pass --baseline-dir (an empty folder to judge without baselines)")


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
        history = _merge_history(args.history, root) if args.history is not None else None  # a usage error before merging

        def store() -> BaselineStore:
            baseline_dir = _baseline_dir(args, reports, root)
            return BaselineStore(baseline_dir, root if baseline_dir.is_relative_to(root) else baseline_dir.parent)

        doc = merge_reports(reports, store, git_root=root)
    except LLMEvalError as exc:
        print(f"llm-eval merge: {exc}", file=sys.stderr)
        return 2
    trends = None
    if history is not None:
        history.write(doc)  # complete, judged merges only; a failed write is a warning
        trends = history.trends(doc) if args.html is not None else None
        history.close()
    write_json(args.output, doc)
    if args.markdown is not None:
        write_atomic(args.markdown, render_markdown(doc))
    if args.html is not None and _write_html("merge", args.html, doc, trends=trends) != 0:
        return 2
    if history is not None:
        print(history.line)
    for suite in doc["suites"]:
        for note in suite["notes"]:
            if note.startswith("BASELINE MISSING"):
                print(f"llm-eval merge: warning: {suite['suite_id']}: {note}", file=sys.stderr)
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


def _merge_history(value: str, root: Path) -> Any:
    """The run history a merged run is recorded in (a glue HistoryOutput): ``value`` as
    ``--llm-eval-history`` takes it, relative to the working directory; empty: the ini
    ``llm_eval_history`` of ``root``'s pyproject.toml (relative to ``root``), else the
    default SQLite file. LLMEvalError when the database or the alerts config is unusable."""
    from .glue.history import HistoryOutput
    from .glue.options import HISTORY_DEFAULT, history_setting

    url = history_setting(value or None, _ini_value(root, "llm_eval_history") or HISTORY_DEFAULT, root)
    alerts = _ini_value(root, "llm_eval_history_alerts")
    return HistoryOutput(url, _ini_bool(root, "llm_eval_history_cases"), root / alerts if alerts else None)


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


# -- production monitoring: history, shadow, cost (pytest_llmeval.monitoring) -------------


def _add_monitoring_commands(commands: Any) -> None:
    history = commands.add_parser("history", help="quality trends and alerts from the run history")
    history.add_argument("--db", help="history database URL or SQLite file (default: ini llm_eval_history in "
                                      "pyproject.toml, else .llm-eval/history.sqlite)")
    history.add_argument("--rootdir", type=Path, default=Path("."), help="the project root (default .)")
    history.add_argument("--suite", help="only this suite id")
    history.add_argument("--metric", help="only this metric")
    history.add_argument("--since", default="30d", help="show and alert on this window: 30d, 12h, 2w or an ISO date "
                                                        "(default 30d; the moving average also uses older runs)")
    history.add_argument("--config", type=Path, help="llmops-config.yaml: monitoring.quality_alert_threshold and "
                                                     "latency_p95_alert_ms")
    history.add_argument("--quality-alert", type=float, metavar="REL", help="relative drop of the 7-day average that "
                                                                            "alerts, e.g. -0.05 (wins over --config)")
    history.add_argument("--latency-alert-ms", type=float, metavar="MS", help="p95 latency that alerts (wins over --config)")
    history.add_argument("--format", choices=("text", "json"), default="text")
    history.add_argument("--plot", type=Path, metavar="FILE", help="also draw the trend to FILE (.svg or .png)")
    history.add_argument("--html", type=Path, metavar="FILE", help="also write the trend as a self-contained HTML page "
                                                                   "(inline SVG; needs Jinja2, the html extra)")
    history.add_argument("--now", help=argparse.SUPPRESS)  # tests: the clock --since counts back from

    shadow = commands.add_parser("shadow", help="blue/green comparison of logged traffic: may green take over?")
    shadow.add_argument("logs", nargs="+", type=Path, metavar="LOG",
                        help="one log whose records carry variant: blue|green, or two logs: blue's, then green's "
                             "(JSONL or Parquet; joined by request_id)")
    shadow.add_argument("--scorer", action="append", required=True, metavar="NAME[=JSON]",
                        help="a scorer both outputs are scored with (repeatable), with options as JSON: "
                             "--scorer 'regex={\"pattern\": \"^ok\"}'")
    shadow.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    shadow.add_argument("--max-drop", type=float, default=0.02, help="allowed drop of green against blue (default 0.02)")
    shadow.add_argument("--min-pairs", type=int, default=30, help="fewer pairs decide nothing (default 30)")
    shadow.add_argument("--sample", type=float, default=1.0, metavar="FRACTION",
                        help="score this share of the pairs, chosen by a hash of the request id (default 1)")
    shadow.add_argument("--max-pairs", type=int, metavar="N", help="score at most N pairs (the same N on every rerun)")
    shadow.add_argument("--concurrency", type=_positive_count, metavar="N",
                        help="pairs scored at once, for LLM judges (default: ini llm_eval_concurrency of --rootdir, else 16)")
    _add_price_options(shadow)
    shadow.add_argument("--format", choices=("text", "json"), default="text")
    shadow.add_argument("-o", "--output", type=Path, help="also write the JSON document here (for llm-eval-check --shadow)")

    cost = commands.add_parser("cost", help="daily spend by feature, model and segment from request logs, with the budget alert")
    cost.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="request logs (JSONL or Parquet)")
    cost.add_argument("--config", type=Path, help="llmops-config.yaml: monitoring.daily_cost_budget and cost_alert_threshold")
    cost.add_argument("--daily-budget", type=float, metavar="USD", help="daily cost budget (wins over --config)")
    cost.add_argument("--alert-threshold", type=float, metavar="FRACTION",
                      help="fraction of the budget that alerts (wins over --config; default 1)")
    cost.add_argument("--report-only", action="store_true", help="print the spend without a budget (no alert checked)")
    _add_price_options(cost)
    cost.add_argument("--format", choices=("text", "json"), default="text")


def _monitoring_config(path: Path | None) -> dict[str, Any]:
    """The config's ``monitoring`` block (see :func:`pytest_llmeval.check.monitoring_block`)."""
    if path is None:
        return {}
    from .check import monitoring_block

    return monitoring_block(path)


def _ini_value(root: Path, key: str) -> str:
    """``[tool.pytest.ini_options]`` of ``root/pyproject.toml`` (empty when absent; a list
    is read as lines, as pytest reads a linelist key)."""
    import tomllib

    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{root / 'pyproject.toml'}: {exc}") from None
    value = data.get("tool", {}).get("pytest", {}).get("ini_options", {}).get(key, "")
    return "\n".join(map(str, value)) if isinstance(value, list) else str(value).strip()


def _ini_bool(root: Path, key: str) -> bool:
    """A bool ini key read as pytest reads it (y/yes/t/true/on/1, n/no/f/false/off/0; unset:
    false); ConfigError naming the file and key for anything else."""
    value = _ini_value(root, key).lower()
    if value in ("y", "yes", "t", "true", "on", "1"):
        return True
    if value in ("", "n", "no", "f", "false", "off", "0"):
        return False
    raise ConfigError(f"{root / 'pyproject.toml'}: ini {key}: {value!r} is not a boolean (true or false)")


def _history(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, timezone

    from .monitoring.history import HistoryStore, history_url
    from .monitoring.trends import AlertPolicy, build_trends, parse_since, plot, render_text

    try:
        root = args.rootdir.resolve()
        value = args.db if args.db is not None else _ini_value(root, "llm_eval_history")
        url = history_url("" if value == "default" else value, Path.cwd() if args.db is not None else root)
        monitoring = _monitoring_config(args.config)
        policy = AlertPolicy(
            quality_alert_threshold=args.quality_alert if args.quality_alert is not None
            else monitoring.get("quality_alert_threshold"),
            latency_p95_alert_ms=args.latency_alert_ms if args.latency_alert_ms is not None
            else monitoring.get("latency_p95_alert_ms"),
        )
        now = datetime.fromisoformat(args.now) if args.now else datetime.now(timezone.utc).replace(tzinfo=None)
        since = parse_since(args.since, now)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            raise ConfigError(f"no run history at {url.removeprefix('sqlite:///')}: record runs with "
                              "pytest --llm-eval --llm-eval-history (or pass --db)")
        with HistoryStore(url) as store:
            _check_selection(store, args.suite, args.metric)
            report = build_trends(store.metric_points(suite=args.suite, metric=args.metric),
                                  store.latency_points(suite=args.suite),
                                  policy, since)
        if args.plot is not None:
            plot(report, args.plot)
        if args.html is not None:
            from .fileio import write_atomic
            from .monitoring.trends import html_view
            from .reporting.html_trends import render_trends_page

            write_atomic(args.html, render_trends_page(html_view(report, store.shown), "llm-eval history"))
    except LLMEvalError as exc:
        print(f"llm-eval history: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True, allow_nan=False))
    else:
        sys.stdout.write(render_text(report))
        if args.plot is not None:
            print(f"wrote the plot to {args.plot}")
        if args.html is not None:
            print(f"wrote the HTML page to {args.html}")
    return report.exit_code


def _check_selection(store: Any, suite: str | None, metric: str | None) -> None:
    """ConfigError for a --suite or --metric the history never recorded: a typo would
    otherwise select nothing and report "no alert" for ever."""
    import difflib

    if suite is None and metric is None:
        return
    suites, metrics = store.names()
    for option, value, known in (("--suite", suite, suites), ("--metric", metric, metrics)):
        if value is None or value in known or not known:
            continue
        close = difflib.get_close_matches(value, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
        raise ConfigError(f"{option} {value!r}: the history has recorded no such {option[2:]}; {hint}(recorded: {shown})")


def _add_price_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--price-file", type=Path, help="YAML price file (models: {name: {input: .., output: ..}}); "
                                                        "default: ini llm_eval_price_file and llm_eval_prices")
    parser.add_argument("--rootdir", type=Path, default=Path("."), help="the project root whose pyproject.toml holds "
                                                                       "the ini prices and the judge's llm_eval_judge_* "
                                                                       "keys (default .)")


def _price_table(args: argparse.Namespace) -> Any:
    """The built-in prices with the project's ini overrides and --price-file over them."""
    from .providers.pricing import PriceTable, load_price_file, parse_price_lines

    root = args.rootdir.resolve()
    lines = _ini_value(root, "llm_eval_prices")
    overrides = parse_price_lines([x for x in lines.splitlines() if x.strip()], "ini llm_eval_prices") if lines else {}
    ini_file = _ini_value(root, "llm_eval_price_file")
    price_file = args.price_file or (root / ini_file if ini_file else None)
    if price_file is not None:
        overrides = {**overrides, **load_price_file(price_file)}
    return PriceTable.default().with_overrides(overrides)


class _ProjectIni:
    """``getini`` over ``root/pyproject.toml``'s ``[tool.pytest.ini_options]``, for the
    option readers the plugin uses (pytest_llmeval.glue.options)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def getini(self, key: str) -> str:
        return _ini_value(self.root, key)


@contextmanager
def _project_models(args: argparse.Namespace, prices: Any) -> Iterator[None]:
    """Within the block, the judge scorers (judge:*) call the judge a pytest run of the
    project would: env LLM_EVAL_JUDGE_* / LLM_EVAL_*, else the ini keys of --rootdir's
    pyproject.toml."""
    from .glue.options import judge_provider, provider_config
    from .providers import runtime

    ini = _ProjectIni(args.rootdir.resolve())
    before = runtime.defaults()
    runtime.set_defaults(runtime.Defaults(provider_config(ini), None, prices, judge_provider(ini)))
    try:
        yield
    finally:
        runtime.set_defaults(before)


def _bound_scorers(entries: Sequence[str]) -> list[Any]:
    from .scorers import default_registry
    from .validation import json_object

    parsed: list[Any] = []
    for entry in entries:
        name, sep, options = entry.partition("=")
        if not sep:
            parsed.append(name)
            continue
        parsed.append((name, json_object(options, f"--scorer {entry}: options", ConfigError)))
    return default_registry().bind(parsed)


def _shadow(args: argparse.Namespace) -> int:
    import json

    from .fileio import write_atomic
    from .monitoring.shadow import ShadowSettings, decide_cutover, load_pairs, render_text

    try:
        settings = ShadowSettings(alpha=args.alpha, max_drop=args.max_drop, min_pairs=args.min_pairs,
                                  sample=args.sample, max_pairs=args.max_pairs)
        prices = _price_table(args)
        with _project_models(args, prices):
            scorers = _bound_scorers(args.scorer)
            pairs, left_out = load_pairs(args.logs, settings)
            doc = decide_cutover(pairs, scorers, settings, prices=prices, left_out=left_out,
                                 logs=[str(p) for p in args.logs], concurrency=_shadow_concurrency(args))
    except LLMEvalError as exc:
        print(f"llm-eval shadow: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
    if args.output is not None:
        write_atomic(args.output, text)
    sys.stdout.write(text if args.format == "json" else render_text(doc))
    return {"allow": 0, "block": 1, "insufficient": 3}[doc["decision"]]


def _positive_count(text: str) -> int:
    """argparse type: a positive int, checked as the plugin checks its own options."""
    from .glue.options import _positive_int

    return _positive_int(text)


def _shadow_concurrency(args: argparse.Namespace) -> int:
    """--concurrency (checked by argparse), else the project's ini llm_eval_concurrency read
    as a pytest run reads it, else the plugin's default."""
    from .glue.options import DEFAULT_CONCURRENCY

    if args.concurrency is not None:
        return args.concurrency
    root = args.rootdir.resolve()
    text = _ini_value(root, "llm_eval_concurrency")
    try:
        return _positive_count(text) if text else DEFAULT_CONCURRENCY
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"{root / 'pyproject.toml'}: ini llm_eval_concurrency: {exc}") from None


def _cost(args: argparse.Namespace) -> int:
    import json
    from itertools import chain

    from .monitoring.cost import CostPolicy, analyse_costs, render_text
    from .monitoring.logs import read_log

    try:
        monitoring = _monitoring_config(args.config)
        budget = args.daily_budget if args.daily_budget is not None else monitoring.get("daily_cost_budget")
        fraction = args.alert_threshold if args.alert_threshold is not None else monitoring.get("cost_alert_threshold", 1.0)
        if budget is None and not args.report_only:
            raise ConfigError("no daily budget: give --config with monitoring.daily_cost_budget or --daily-budget "
                              "(or --report-only to print the spend without checking an alert)")
        doc = analyse_costs(chain.from_iterable(read_log(p) for p in args.logs), _price_table(args),
                            CostPolicy(budget, fraction))
    except LLMEvalError as exc:
        print(f"llm-eval cost: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        sys.stdout.write(render_text(doc))
    return 1 if doc["alerts"] else 0


_MONITORING_COMMANDS = {"history": _history, "shadow": _shadow, "cost": _cost}


if __name__ == "__main__":
    sys.exit(main())
