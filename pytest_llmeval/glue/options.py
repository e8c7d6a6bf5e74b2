"""Command-line options and ini keys, resolved once into a frozen :class:`Settings`.

Precedence: command-line option > ini key (``[tool.pytest.ini_options]``) > default.
Bad values fail at start-up with a message naming the option or key.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..gate.sequential import SequentialDesign
from ..providers.config import ProviderConfig

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_BASELINE_DIR",
    "DEFAULT_MAX_DROP",
    "Settings",
    "add_options",
    "history_setting",
    "parse_metric_values",
    "resolve",
]

DEFAULT_ALPHA = 0.05
DEFAULT_MAX_DROP = 0.02
DEFAULT_BASELINE_DIR = ".llm-eval"
DEFAULT_CONCURRENCY = 16
DEFAULT_CACHE_MODE = "off"
DEFAULT_CACHE_DIR = ".llm-eval/cache"
CACHE_MODES = ("off", "read", "write", "readwrite", "strict")
DEFAULT_OUTPUT_CHARS = 1000
DEFAULT_BASELINE_OUTPUT_CHARS = 500
DEFAULT_REVIEW_FILE = ".llm-eval/reviews.jsonl"
PROGRESS_MODES = ("auto", "on", "off")
DEFAULT_DATASET_CACHE = ".llm-eval/datasets"
HISTORY_DEFAULT = "default"  # --llm-eval-history without a URL: .llm-eval/history.sqlite


@dataclass(frozen=True)
class Settings:
    enabled: bool = False
    update: bool = False
    repeats: int | str | None = None  # --llm-eval-repeats (K or "auto"): wins over the marker's repeats=
    default_repeats: int | str = 1  # ini llm_eval_repeats: for suites whose marker sets none
    sequential: SequentialDesign | None = None  # how repeats="auto" runs (None: the defaults)
    alpha: float = DEFAULT_ALPHA
    max_drop: float = DEFAULT_MAX_DROP
    max_drop_by_metric: Mapping[str, float] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    baseline_dir: Path = Path(DEFAULT_BASELINE_DIR)
    non_inferiority: bool = False
    enforce_thresholds: bool = True
    enforce_partial: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    cache_mode: str = DEFAULT_CACHE_MODE
    cache_dir: Path = Path(DEFAULT_CACHE_DIR)
    provider: ProviderConfig = field(default_factory=ProviderConfig)
    price_lines: tuple[str, ...] = ()
    price_file: Path | None = None
    budgets: Mapping[str, float] = field(default_factory=dict)
    report: Path | None = None
    markdown: Path | None = None
    output_chars: int = DEFAULT_OUTPUT_CHARS
    shard: tuple[int, int] | None = None
    judge: ProviderConfig | None = None
    prompts_dir: Path = Path("prompts")
    prompt_log: Path = Path(".llm-eval/prompt-log.jsonl")
    capture: bool = True  # ini llm_eval_capture: count and record/replay SDK calls (providers/capture.py)
    otel: bool = False  # ini llm_eval_otel: count OpenTelemetry GenAI spans (providers/otel.py)
    variants: Any = None  # core.variants.RunVariants (--llm-eval-variants / --llm-eval-routes), imported lazily
    html: Path | None = None
    baseline_output_chars: int = DEFAULT_BASELINE_OUTPUT_CHARS
    review_file: Path = Path(DEFAULT_REVIEW_FILE)
    review_override: bool = False
    progress: str = "auto"
    history: str | None = None  # SQLAlchemy URL of the run history (None: not recorded)
    history_cases: bool = False
    history_alerts: Path | None = None  # llmops-config.yaml whose monitoring block sets the Trends tab's alerts
    dataset_cache: Path = Path(DEFAULT_DATASET_CACHE)

    def result_options(self) -> dict[str, Any]:
        """The options recorded in the report; merging refuses shards that differ in the
        ones that shape results (see :data:`pytest_llmeval.reporting.merge.RESULT_SHAPING_OPTIONS`)."""
        return {
            "alpha": self.alpha,
            "max_drop": self.max_drop,
            "max_drop_by_metric": dict(self.max_drop_by_metric),
            "non_inferiority": self.non_inferiority,
            "enforce_thresholds": self.enforce_thresholds,
            "enforce_partial": self.enforce_partial,
            "repeats": self.repeats,
            "default_repeats": self.default_repeats,
            **({"auto_repeats": {"max_rounds": self.sequential.max_rounds, "boundary": self.sequential.boundary,
                                 "rerun": self.sequential.rerun}} if self.sequential is not None else {}),
            "update": self.update,
            "cache_mode": self.cache_mode,
            "concurrency": self.concurrency,
            "output_chars": self.output_chars,
        }



def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _repeats(text: str) -> int | str:
    """A positive integer, or ``auto`` (adaptive repeats, see gate/sequential.py)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {text!r}") from None


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _cache_mode(text: str) -> str:
    if text not in CACHE_MODES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(CACHE_MODES)}, got {text!r}")
    return text


def _progress(text: str) -> str:
    if text not in PROGRESS_MODES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(PROGRESS_MODES)}, got {text!r}")
    return text


def _shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (0, 0)
    if not sep or not 1 <= shard[0] <= shard[1]:
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N (e.g. 2/3), got {text!r}")
    return shard


def value_options(parser: Any) -> set[str]:
    """The names of this plugin's options that take a value (``--llm-eval-report PATH``)."""
    group = parser.getgroup("llm-eval")
    return {name for option in group.options if _takes_value(option.attrs()) for name in option.names()}


def _takes_value(attrs: dict[str, Any]) -> bool:
    """Whether an option reads a value: pytest 9 gives the argparse action's attributes
    (a flag has ``nargs`` 0), older pytest the ``addoption`` keywords (``action``)."""
    return attrs.get("nargs") != 0 and attrs.get("action") not in ("store_true", "store_false", "store_const", "count")


def add_options(parser: Any) -> None:
    """Register options and ini keys on pytest's parser."""
    group = parser.getgroup("llm-eval", "LLM evaluation (pytest-llmeval)")
    group.addoption("--llm-eval", action="store_true", dest="llm_eval", help="run tests marked llm_eval (skipped otherwise: evals cost money and time)")
    group.addoption("--llm-eval-update", action="store_true", dest="llm_eval_update", help="write this run's per-case scores as the new baseline (only after a complete run)")
    group.addoption("--llm-eval-repeats", type=_repeats, dest="llm_eval_repeats", metavar="K|auto", help="run every case K times; repeats are averaged per case before any test; auto: run once, and more rounds only while the regression test is inconclusive")
    group.addoption("--llm-eval-alpha", type=_probability, dest="llm_eval_alpha", metavar="ALPHA", help=f"significance level of the regression test (ini llm_eval_alpha, default {DEFAULT_ALPHA})")
    group.addoption("--llm-eval-non-inferiority", action="store_true", dest="llm_eval_non_inferiority", help="strict mode: pass only if the lower confidence bound of the change is above minus the allowed drop")
    group.addoption("--llm-eval-ignore-thresholds", action="store_true", dest="llm_eval_ignore_thresholds", help="report absolute thresholds but do not fail on them (e.g. when blessing a baseline)")
    group.addoption("--llm-eval-enforce-partial", action="store_true", dest="llm_eval_enforce_partial", help="fail on thresholds even when only some of a suite's cases were selected (-k, node ids, --lf); by default they are reported, not enforced")
    group.addoption("--llm-eval-concurrency", type=_positive_int, dest="llm_eval_concurrency", metavar="N", help=f"app calls in flight at once per suite (ini llm_eval_concurrency, default {DEFAULT_CONCURRENCY})")
    group.addoption("--llm-eval-cache", type=_cache_mode, dest="llm_eval_cache", metavar="MODE", help="record/replay model responses: off, read, write, readwrite, or strict (replay only; a call not in the cache fails its case)")
    group.addoption("--llm-eval-report", dest="llm_eval_report", metavar="PATH", help="write the JSON report here (ini llm_eval_report)")
    group.addoption("--llm-eval-markdown", dest="llm_eval_markdown", metavar="PATH", help="write a Markdown summary for a merge-request comment (ini llm_eval_markdown)")
    group.addoption("--llm-eval-shard", type=_shard, dest="llm_eval_shard", metavar="I/N", help="run only shard I of N of every suite's cases; the gate is deferred to `llm-eval merge`")
    group.addoption("--llm-eval-html", dest="llm_eval_html", metavar="PATH", help="write a self-contained HTML report here (ini llm_eval_html; needs pytest-llmeval[html])")
    group.addoption("--llm-eval-review-override", action="store_true", dest="llm_eval_review_override", default=None,
                    help="a reviewer's verdict in the review file decides the case's outcome (ini llm_eval_review_override)")
    group.addoption("--llm-eval-progress", type=_progress, dest="llm_eval_progress", metavar="MODE",
                    help="live progress line per suite: auto (on a terminal outside CI), on, off (ini llm_eval_progress)")
    group.addoption("--llm-eval-history", nargs="?", const=HISTORY_DEFAULT, dest="llm_eval_history", metavar="URL",
                    help="record this run in the run history: a database URL (postgresql://...), a SQLite file, or "
                         "nothing for .llm-eval/history.sqlite (ini llm_eval_history; needs the history extra)")
    parser.addini("llm_eval_history", default="", help="run history: database URL or SQLite file, or 'default' for "
                                                         ".llm-eval/history.sqlite (empty: not recorded)")
    parser.addini("llm_eval_history_cases", type="bool", default=False, help="also store every case's scores in the run history")
    parser.addini("llm_eval_history_alerts", default="", help="llmops-config.yaml (relative to rootdir) whose monitoring "
                                                              "block draws the alert lines of the HTML report's Trends tab")
    parser.addini("llm_eval_dataset_cache", default=DEFAULT_DATASET_CACHE, help="folder (relative to rootdir) caching remote datasets (s3://, gs://, https://)")
    parser.addini("llm_eval_report", default="", help="path of the JSON report (relative to rootdir)")
    parser.addini("llm_eval_html", default="", help="path of the HTML report (relative to rootdir)")
    parser.addini("llm_eval_baseline_output_chars", default=str(DEFAULT_BASELINE_OUTPUT_CHARS), help="outputs kept per case in the baseline, for diffs and review flags (0: none)")
    parser.addini("llm_eval_review_file", default=DEFAULT_REVIEW_FILE, help="reviewers' decisions, JSON lines (relative to rootdir)")
    parser.addini("llm_eval_review_override", type="bool", default=False, help="a reviewer's verdict decides the case's outcome")
    parser.addini("llm_eval_progress", default="auto", help="live progress line per suite: auto, on, off")
    parser.addini("llm_eval_markdown", default="", help="path of the Markdown summary (relative to rootdir)")
    parser.addini("llm_eval_report_output_chars", default=str(DEFAULT_OUTPUT_CHARS), help="outputs longer than this are truncated in the report (0: leave outputs out)")
    parser.addini("llm_eval_prompts_dir", default="prompts", help="folder (relative to rootdir) of prompt templates")
    parser.addini("llm_eval_prompt_log", default=".llm-eval/prompt-log.jsonl", help="append-only log of prompt versions and their blessed results")
    parser.addini("llm_eval_concurrency", default=str(DEFAULT_CONCURRENCY), help="app calls in flight at once per suite")
    parser.addini("llm_eval_cache", default=DEFAULT_CACHE_MODE, help="record/replay mode (see --llm-eval-cache)")
    parser.addini("llm_eval_cache_dir", default=DEFAULT_CACHE_DIR, help="folder (relative to rootdir) of recorded responses")
    parser.addini("llm_eval_provider", default="", help="default client protocol: openai (chat completions, also vLLM/Ollama/llama.cpp/LiteLLM/Azure) or anthropic (env LLM_EVAL_PROVIDER wins)")
    parser.addini("llm_eval_model", default="", help="default model (env LLM_EVAL_MODEL wins)")
    parser.addini("llm_eval_base_url", default="", help="default base URL, e.g. http://localhost:8000/v1 (env LLM_EVAL_BASE_URL wins)")
    parser.addini("llm_eval_api_key_env", default="", help="name of the environment variable holding the API key (never the key itself)")
    parser.addini("llm_eval_timeout", default="", help="seconds to wait for a model answer")
    parser.addini("llm_eval_max_retries", default="", help="retries after a timeout, dropped connection, 429 or 5xx")
    parser.addini("llm_eval_rate_limit", default="", help="requests per second to one provider endpoint, across the suite")
    parser.addini("llm_eval_judge_provider", default="", help="LLM judge protocol (default: llm_eval_provider; env LLM_EVAL_JUDGE_PROVIDER wins)")
    parser.addini("llm_eval_judge_model", default="", help="LLM judge model (env LLM_EVAL_JUDGE_MODEL wins)")
    parser.addini("llm_eval_judge_base_url", default="", help="LLM judge base URL (default: llm_eval_base_url; env LLM_EVAL_JUDGE_BASE_URL wins)")
    parser.addini("llm_eval_judge_api_key_env", default="", help="environment variable holding the judge's API key")
    parser.addini("llm_eval_prices", type="linelist", default=[], help="model = input / output USD per million tokens, one per line (overrides the built-in table)")
    parser.addini("llm_eval_price_file", default="", help="YAML file of prices: models: {name: {input: .., output: ..}}")
    parser.addini("llm_eval_budgets", type="linelist", default=[], help="name=value lines: max_cost_per_case, max_latency_p95_ms, max_error_rate, max_output_tokens_increase, max_input_tokens_increase")
    parser.addini("llm_eval_thresholds", type="linelist", default=[], help="metric=minimum mean, one per line, for every suite recording that metric (the marker's thresholds= win)")
    parser.addini("llm_eval_max_drop", type="linelist", default=[], help=f"allowed drop against the baseline: a number for all metrics and/or metric=number lines (default {DEFAULT_MAX_DROP})")
    parser.addini("llm_eval_alpha", default=str(DEFAULT_ALPHA), help="significance level of the regression test")
    parser.addini("llm_eval_repeats", default="", help="default number of repeats per case, or auto")
    # Defaults as in gate.sequential.SequentialDesign (not imported here: this module loads on every pytest run).
    parser.addini("llm_eval_auto_max_rounds", default="5", help="repeats=auto: at most this many rounds (1-10)")
    parser.addini("llm_eval_auto_boundary", default="pocock", help="repeats=auto: alpha spending, pocock or obrien-fleming")
    parser.addini("llm_eval_auto_rerun", default="half", help="repeats=auto: what a further round runs: half (half the cases, in turn), all (every case) or flaky (cases whose baseline repeats disagree)")
    parser.addini("llm_eval_baseline_dir", default=DEFAULT_BASELINE_DIR, help="folder (relative to rootdir) holding one baseline file per suite")
    parser.addini("llm_eval_enforce_partial", type="bool", default=False, help="see --llm-eval-enforce-partial")
    parser.addini("llm_eval_non_inferiority", type="bool", default=False, help="strict non-inferiority mode (see --llm-eval-non-inferiority)")
    parser.addini("llm_eval_capture", type="bool", default=True, help="count, record and replay the openai/anthropic SDK, litellm and LangChain HTTP calls of eval cases (false: only the plugin's own clients)")
    parser.addini("llm_eval_otel", type="bool", default=False, help="also count OpenTelemetry GenAI spans of eval cases as model calls (needs the otel extra)")
    add_variant_options(group, parser)


def parse_metric_values(lines: Any, source: str, *, allow_default: bool = False) -> tuple[float | None, dict[str, float]]:
    """Parse ``metric=value`` lines (and, if allowed, one bare ``value``)."""
    default: float | None = None
    by_metric: dict[str, float] = {}
    for line, name, text in _assignments(lines, source, "metric=value", allow_bare=allow_default):
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{source}: {line!r}: {text!r} is not a number") from None
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{source}: {line!r}: value must be in [0, 1]")
        if name:
            by_metric[name] = value
        else:
            default = value
    return default, by_metric


def _assignments(lines: Any, source: str, form: str, *, allow_bare: bool = False) -> Iterator[tuple[str, str, str]]:
    """``(line, name, value)`` of each non-blank ``name=value`` line of an ini value (a
    string or pytest's list of lines), stripped; a bare ``value`` has the name ``""`` when
    allowed and is a ConfigError naming ``source`` and ``form`` otherwise."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    for raw in lines:
        line = str(raw).strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        if not sep:
            if not allow_bare:
                raise ConfigError(f"{source}: {line!r} is not of the form {form}")
            name, value = "", name
        yield line, name.strip(), value.strip()


def resolve(config: Any) -> Settings:
    """Build Settings from pytest's config; raise ConfigError on a bad ini value."""
    option = config.option
    _, thresholds = parse_metric_values(config.getini("llm_eval_thresholds"), "ini llm_eval_thresholds")
    max_drop, max_drop_by_metric = parse_metric_values(config.getini("llm_eval_max_drop"), "ini llm_eval_max_drop", allow_default=True)

    alpha = option.llm_eval_alpha
    if alpha is None:
        alpha = _ini(config, "llm_eval_alpha", _probability)
    repeats = option.llm_eval_repeats
    default_repeats = _ini(config, "llm_eval_repeats", _repeats, default=1)
    sequential = _sequential_design(config) if option.llm_eval or option.llm_eval_update else None
    concurrency = option.llm_eval_concurrency
    if concurrency is None:
        concurrency = _ini(config, "llm_eval_concurrency", _positive_int)
    cache_mode = option.llm_eval_cache
    if cache_mode is None:
        cache_mode = _ini(config, "llm_eval_cache", _cache_mode)

    from ..gate.budget_keys import DEFAULT_BUDGETS, parse_budgets

    budgets = {**DEFAULT_BUDGETS, **parse_budgets(_key_values(config.getini("llm_eval_budgets"), "ini llm_eval_budgets"), "ini llm_eval_budgets")}
    price_file = str(config.getini("llm_eval_price_file")).strip()
    root = Path(config.rootpath)
    output_chars = _ini(config, "llm_eval_report_output_chars", _non_negative_int)
    if option.llm_eval_shard is not None and option.llm_eval_update:
        raise ConfigError("--llm-eval-update cannot be combined with --llm-eval-shard: bless a baseline from a full run")

    return Settings(
        enabled=bool(option.llm_eval or option.llm_eval_update),
        update=bool(option.llm_eval_update),
        repeats=repeats,
        default_repeats=default_repeats,
        sequential=sequential,
        alpha=alpha,
        max_drop=DEFAULT_MAX_DROP if max_drop is None else max_drop,
        max_drop_by_metric=max_drop_by_metric,
        thresholds=thresholds,
        baseline_dir=Path(config.rootpath) / config.getini("llm_eval_baseline_dir"),
        non_inferiority=bool(option.llm_eval_non_inferiority or config.getini("llm_eval_non_inferiority")),
        enforce_thresholds=not option.llm_eval_ignore_thresholds,
        enforce_partial=bool(option.llm_eval_enforce_partial or config.getini("llm_eval_enforce_partial")),
        concurrency=concurrency,
        cache_mode=cache_mode,
        cache_dir=root / config.getini("llm_eval_cache_dir"),
        provider=provider_config(config),
        judge=judge_provider(config),
        price_lines=tuple(config.getini("llm_eval_prices")),
        price_file=root / price_file if price_file else None,
        budgets=budgets,
        report=_output_path(option.llm_eval_report, config.getini("llm_eval_report"), root),
        markdown=_output_path(option.llm_eval_markdown, config.getini("llm_eval_markdown"), root),
        output_chars=output_chars,
        shard=option.llm_eval_shard,
        prompts_dir=root / config.getini("llm_eval_prompts_dir"),
        prompt_log=root / config.getini("llm_eval_prompt_log"),
        capture=bool(config.getini("llm_eval_capture")),
        otel=bool(config.getini("llm_eval_otel")),
        variants=_run_variants(config) if option.llm_eval or option.llm_eval_update else None,
        html=_output_path(option.llm_eval_html, config.getini("llm_eval_html"), root),
        baseline_output_chars=_ini(config, "llm_eval_baseline_output_chars", _non_negative_int),
        review_file=root / config.getini("llm_eval_review_file"),
        review_override=bool(option.llm_eval_review_override or config.getini("llm_eval_review_override")),
        progress=option.llm_eval_progress or _ini(config, "llm_eval_progress", _progress),
        history=history_setting(option.llm_eval_history, config.getini("llm_eval_history"), root),
        history_cases=bool(config.getini("llm_eval_history_cases")),
        history_alerts=_output_path(None, config.getini("llm_eval_history_alerts"), root),
        dataset_cache=root / config.getini("llm_eval_dataset_cache"),
    )


def _run_variants(config: Any) -> Any:
    from .variant_setup import run_variants  # only for runs with --llm-eval

    return run_variants(config)


def _sequential_design(config: Any) -> SequentialDesign:
    """The ``llm_eval_auto_*`` ini keys, checked by SequentialDesign itself."""
    from ..gate.sequential import SequentialDesign

    max_rounds = _ini(config, "llm_eval_auto_max_rounds", _positive_int)
    boundary = str(config.getini("llm_eval_auto_boundary")).strip()
    rerun = str(config.getini("llm_eval_auto_rerun")).strip()
    try:
        return SequentialDesign(max_rounds, boundary, rerun)
    except ValueError as exc:
        raise ConfigError(f"ini llm_eval_auto_*: {exc}") from None


def history_setting(cli: str | None, ini: str, root: Path) -> str | None:
    """The history's SQLAlchemy URL: the flag's value, else the ini's ('default' or a bare
    flag: the SQLite file under rootdir's .llm-eval/); None when history is off."""
    value = cli if cli is not None else str(ini).strip()
    if not value:
        return None
    from ..monitoring.history import history_url  # only for runs that record history

    if value == HISTORY_DEFAULT:
        return history_url("", root)
    if cli is not None and "://" not in value and (value.split("::")[0].endswith(".py") or Path(value).is_dir()):
        # The flag's value is optional: `--llm-eval-history tests/` took the test path for the database.
        raise ConfigError(f"--llm-eval-history {value}: that is a test path, not a history database; write "
                          f"--llm-eval-history=PATH (or put the flag after the test paths)")
    return history_url(value, Path.cwd() if cli is not None else root)  # as _output_path does


def _output_path(cli: str | None, ini: str, root: Path) -> Path | None:
    """Command-line paths are relative to the working directory (as pytest's own are),
    ini paths to rootdir."""
    if cli:
        return Path(cli).absolute()
    ini = str(ini).strip()
    return root / ini if ini else None


def _ini(config: Any, key: str, parse: Any, default: Any = None) -> Any:
    """An ini value through the same parser as its command-line option (blank: default)."""
    text = str(config.getini(key)).strip()
    if not text and default is not None:
        return default
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"ini {key}: {exc}") from None


def _key_values(lines: Any, source: str) -> dict[str, str]:
    return {name: value for _, name, value in _assignments(lines, source, "name=value")}


def judge_provider(config: Any) -> ProviderConfig | None:
    """The judge's config: ``llm_eval_judge_*`` (env ``LLM_EVAL_JUDGE_*``) over the app's."""
    values: dict[str, Any] = {}
    for field_name in ("provider", "model", "base_url", "api_key_env"):
        env = f"LLM_EVAL_JUDGE_{field_name.upper()}" if field_name != "api_key_env" else None
        value = (os.environ.get(env) if env else None) or str(config.getini(f"llm_eval_judge_{field_name}")).strip()
        if value:
            values[field_name] = value
    return provider_config(config).with_overrides(values) if values else None


def provider_config(config: Any) -> ProviderConfig:
    """The default client config: env LLM_EVAL_* > ini llm_eval_* > ProviderConfig defaults."""
    values: dict[str, Any] = {}
    for field_name, env in (("provider", "LLM_EVAL_PROVIDER"), ("model", "LLM_EVAL_MODEL"), ("base_url", "LLM_EVAL_BASE_URL"),
                            ("api_key_env", None), ("timeout", None), ("max_retries", None), ("rate_limit", None)):
        value = (os.environ.get(env) if env else None) or str(config.getini(f"llm_eval_{field_name}")).strip()
        if not value:
            continue
        try:
            values[field_name] = int(value) if field_name == "max_retries" else float(value) if field_name in ("timeout", "rate_limit") else value
        except ValueError:
            raise ConfigError(f"ini llm_eval_{field_name}: {value!r} is not a number") from None
    return ProviderConfig(**values)


# -- A/B variants and routed models (see docs/variants.md) ----------------------------------

DEFAULT_MIN_EFFECT = 0.05
DEFAULT_PARITY_MARGIN = 0.05


def _effect(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def add_variant_options(group: Any, parser: Any) -> None:
    group.addoption("--llm-eval-variants", dest="llm_eval_variants", metavar="PATH",
                    help="YAML file of A/B variants {name: {setting: value}} for every suite without variants= (ini llm_eval_variants)")
    group.addoption("--llm-eval-routes", dest="llm_eval_routes", metavar="PATH",
                    help="llmops-config.yaml: run every suite against each model that gets traffic in its routing, "
                         "as variants named after the routes, with a provider-parity gate (ini llm_eval_routes)")
    group.addoption("--llm-eval-parity-margin", type=_effect, dest="llm_eval_parity_margin", metavar="M",
                    help=f"with routes: each routed model must be within M of the primary on every metric (default {DEFAULT_PARITY_MARGIN})")
    group.addoption("--llm-eval-min-effect", type=_effect, dest="llm_eval_min_effect", metavar="E",
                    help=f"the change between variants worth detecting: the cases needed for it are reported (default {DEFAULT_MIN_EFFECT})")
    parser.addini("llm_eval_variants", default="", help="YAML file (relative to rootdir) of A/B variants for suites without variants=")
    parser.addini("llm_eval_routes", default="", help="llmops-config.yaml (relative to rootdir) whose routed models every suite runs against")
    parser.addini("llm_eval_parity_margin", default=str(DEFAULT_PARITY_MARGIN), help="provider-parity margin of routed models")
    parser.addini("llm_eval_min_effect", default=str(DEFAULT_MIN_EFFECT), help="minimum effect between variants for the power analysis")
