"""``llm-eval-check``: may this ``llmops-config.yaml`` ship, given this eval report?

The package is plain Python (it never imports pytest): :func:`check` loads the config
with the line of every key (:mod:`.config`), validates its shape against
``schemas/llmops-config.schema.json``, applies the config rules (:mod:`.rules`), the
pinned-prompt checks and, with a report, the cross-checks (:mod:`.crosscheck`), and
returns a :class:`~.findings.CheckResult`. :mod:`.canary` decides promote / hold /
roll back for a canary stage; :mod:`.cli` is the command line. See docs/checker.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .config import ConfigLoadError, LoadedConfig, load_config, parse_config, schema_findings
from .findings import CODES, CheckResult, Finding, sort_findings

__all__ = [
    "CODES",
    "CheckResult",
    "ConfigLoadError",
    "Finding",
    "LoadedConfig",
    "check",
    "check_loaded",
    "config_only_findings",
    "load_config",
    "monitoring_block",
    "parse_config",
]


def config_only_findings(config: LoadedConfig) -> list[Finding]:
    """Shape and rule findings of the config alone (no report, no files next to it)."""
    from .rules import config_findings

    return [*config.load_findings, *schema_findings(config), *config_findings(config)]


def monitoring_block(path: str | Path) -> dict[str, Any]:
    """The config's ``monitoring`` block (empty when it has none). ConfigLoadError when the
    config cannot be read; ConfigError when a blocking finding is about that block (e.g. a
    positive quality_alert_threshold), so alerts are never checked against a bad value."""
    from ..errors import ConfigError

    config = load_config(path)
    bad = [f for f in config_only_findings(config) if f.blocks and (f.key or "").split(".")[0] == "monitoring"]
    if bad:
        raise ConfigError("; ".join(str(f) for f in bad))
    block = config.get("monitoring")
    return dict(block) if isinstance(block, dict) else {}


def check_loaded(config: LoadedConfig, report: Mapping[str, Any] | None = None, report_name: str | None = None,
                 prompt_log: Path | None = None, shadow: Mapping[str, Any] | None = None,
                 shadow_name: str | None = None) -> CheckResult:
    """Every check of a loaded config, and of a loaded (validated) report and shadow
    comparison when given."""
    from .crosscheck import prompt_findings, report_findings, shadow_findings

    findings = config_only_findings(config)
    findings += prompt_findings(config, report, prompt_log)
    if report is not None:
        findings += report_findings(config, report, report_name or "the report")
    if shadow is not None:
        findings += shadow_findings(config, shadow, shadow_name or "the shadow comparison")
    return CheckResult(config.file, report_name, sort_findings(findings))


def check(config_path: str | Path, report_path: str | Path | None = None,
          prompt_log: str | Path | None = None, shadow_path: str | Path | None = None) -> CheckResult:
    """Check a config file (and a report file, and a shadow comparison written by
    ``llm-eval shadow -o``). Raises ConfigLoadError, LogError or
    :class:`~pytest_llmeval.reporting.report.ReportError` for unusable input (exit 2)."""
    config = load_config(config_path)
    report = None
    if report_path is not None:
        from ..reporting.report import load_report

        report = load_report(Path(report_path))
    shadow = None
    if shadow_path is not None:
        from ..monitoring.shadow import load_shadow_document

        shadow = load_shadow_document(Path(shadow_path))
    return check_loaded(config, report, None if report_path is None else str(report_path),
                        None if prompt_log is None else Path(prompt_log), shadow,
                        None if shadow_path is None else str(shadow_path))
