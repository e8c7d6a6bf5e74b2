"""Shadow / blue-green comparison on logged traffic: is green (the candidate) at least as
good as blue (what serves traffic now) on the same requests?

Input: request logs holding both outputs of each request, either one log whose records
carry ``variant: blue|green`` or two logs (blue first), joined by ``request_id``. Each
record has ``output`` and optionally ``inputs``, ``expected``, ``context`` (what the
scorers read), ``segment``, ``model``, token usage, ``cost`` and ``timestamp`` (see
:mod:`.logs`). Both outputs of a pair are scored by the same scorers (offline or LLM
judges, from the scorer registry), and green is compared with blue by the gate's own
paired test (:func:`pytest_llmeval.gate.verdicts.judge_suite`: exact McNemar for binary
metrics, paired t otherwise, Holm across metrics), overall and per segment.

Decision (the JSON document :func:`decide_cutover` returns, which ``llm-eval-check
--shadow`` reads):

* ``block``: some metric dropped significantly by more than the allowed drop, overall or
  in a segment (the segments are named);
* ``insufficient``: nothing dropped, but the pairs cannot show it (fewer than
  ``min_pairs``, or a minimum detectable drop above the allowed drop): no cutover on
  too little evidence;
* ``allow``: green >= blue within the allowed drop, with the power to see it.

The shadow window's extra inference cost is green's logged usage, priced with the price
table (or the logged ``cost``). What the comparison itself spent on LLM judges is reported
apart (``cost.judging``): those calls are made now, by this command, not by the logged
traffic. ``sample`` keeps a deterministic share of the pairs
(by a hash of the request id), so a rerun looks at the same requests.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError, ScorerError
from ..gate import stats
from ..gate.verdicts import GatePolicy, MetricVerdict, judge_suite
from ..models import Case
from ..providers import accounting
from .logs import LogError, LogRecord, read_log, tokens_of

__all__ = ["KIND", "Pair", "ShadowSettings", "decide_cutover", "load_pairs", "load_shadow_document", "render_text"]

KIND = "pytest-llmeval-shadow/1"
VARIANTS = ("blue", "green")
ALL = "(all traffic)"


@dataclass(frozen=True)
class ShadowSettings:
    alpha: float = stats.DEFAULT_ALPHA
    max_drop: float = 0.02
    min_pairs: int = 30
    sample: float = 1.0
    max_pairs: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be in (0, 1), got {self.alpha!r}")
        if not 0 <= self.max_drop <= 1:
            raise ConfigError(f"--max-drop must be in [0, 1], got {self.max_drop!r}")
        if not 0 < self.sample <= 1:
            raise ConfigError(f"--sample must be a fraction in (0, 1], got {self.sample!r}")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ConfigError(f"--max-pairs must be >= 1, got {self.max_pairs!r}")
        if self.min_pairs < 2:
            raise ConfigError(f"--min-pairs must be >= 2, got {self.min_pairs!r}")


@dataclass(frozen=True)
class Pair:
    """One logged request with both answers: ``blue`` from the current deployment,
    ``green`` from the candidate, joined by ``request_id``."""

    request_id: str
    blue: LogRecord
    green: LogRecord

    @property
    def segment(self) -> str | None:
        return self.green.text("segment") or self.blue.text("segment")

    def case(self) -> Case:
        """What the scorers see: the request's inputs, expected answer and context (from
        either record; the blue one first)."""
        def pick(name: str) -> Any:
            value = self.blue.data.get(name)
            return self.green.data.get(name) if value is None else value

        inputs = pick("inputs") or {}
        if not isinstance(inputs, Mapping):
            raise self.blue.error("inputs", f"must be a mapping, got {type(inputs).__name__}")
        return Case(id=self.request_id, inputs=inputs, expected=pick("expected"), context=pick("context"))


def _sample_key(request_id: str) -> float:
    return int(hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:15], 16) / 16 ** 15


def load_pairs(paths: Sequence[str | Path], settings: ShadowSettings) -> tuple[list[Pair], dict[str, int]]:
    """Join the logs into pairs by request id. One path: records carry ``variant``; two
    paths: blue's log, then green's. Returns the pairs (sampled) and counts of what was
    left out (``blue_only``, ``green_only``, ``sampled_out``). Raises LogError (file:line)
    for a record without a request id or output, or a request logged twice."""
    if len(paths) not in (1, 2):
        raise ConfigError("give one log with a variant field, or two logs (blue, then green)")
    sides: dict[str, dict[str, LogRecord]] = {"blue": {}, "green": {}}
    for index, path in enumerate(paths):
        for record in read_log(path):
            if len(paths) == 1:
                variant = record.text("variant", required=True)
                if variant not in VARIANTS:
                    raise record.error("variant", f"must be blue or green, got {variant!r}")
            else:
                variant = VARIANTS[index]
            request_id = record.text("request_id", required=True)
            output = record.data.get("output")
            if output is None:
                raise record.error("output", "missing: the model's answer to score")
            tokens_of(record), record.number("cost")  # validated now: a bad record stops before any scoring
            seen = sides[variant].get(request_id)
            if seen is not None:
                raise record.error("request_id", f"{variant} request {request_id!r} is logged twice (first on line {seen.line})")
            sides[variant][request_id] = record
    blue, green = sides["blue"], sides["green"]
    shared = [rid for rid in blue if rid in green]
    kept = [rid for rid in shared if _sample_key(rid) < settings.sample]
    if settings.max_pairs is not None and len(kept) > settings.max_pairs:
        kept = sorted(kept, key=_sample_key)[: settings.max_pairs]
        kept_set = set(kept)
        kept = [rid for rid in shared if rid in kept_set]
    counts = {"blue_only": len(blue) - len(shared), "green_only": len(green) - len(shared),
              "sampled_out": len(shared) - len(kept)}
    return [Pair(rid, blue[rid], green[rid]) for rid in kept], counts


def _metric_entry(v: MetricVerdict) -> dict[str, Any]:
    c = v.comparison
    has = c is not None and c.n > 0

    def num(x: float | None) -> float | None:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else x

    return {
        "name": v.metric,
        "n": c.n if c is not None else 0,
        "blue_mean": num(c.baseline_mean) if has else None,
        "green_mean": num(c.current_mean) if has else None,
        "change": num(c.change) if has else None,
        "change_ci_low": num(c.ci_low) if has else None,
        "change_ci_high": num(c.ci_high) if has else None,
        "p_value": num(c.p_value) if has else None,
        "p_adjusted": num(v.p_adjusted),
        "test": c.test if has else None,
        "mde": num(c.mde) if has else None,
        "mde_test": num(c.mde_test) if has else None,  # the test alone: what "enough evidence" is judged on
        "allowed_drop": v.allowed_drop,
        "regressed": v.regressed,
        "reasons": list(v.failures),
        "notes": list(v.notes),
    }


def _compare(pairs_scores: Mapping[str, tuple[dict[str, float], dict[str, float]]], settings: ShadowSettings,
             metrics: Sequence[str]) -> tuple[list[dict[str, Any]], str, list[str]]:
    """Green vs blue over some pairs: metric entries, a decision, and why."""
    blue = {rid: b for rid, (b, _) in pairs_scores.items()}
    green = {rid: g for rid, (_, g) in pairs_scores.items()}
    verdicts = judge_suite(green, {}, {"*": settings.max_drop}, GatePolicy(settings.alpha, settings.max_drop), blue, metrics)
    entries = [_metric_entry(v) for v in verdicts]
    reasons: list[str] = []
    if any(v.regressed for v in verdicts):
        return entries, "block", [e["reasons"][0] for e in entries if e["regressed"]]
    if len(pairs_scores) < settings.min_pairs:
        return entries, "insufficient", [f"{len(pairs_scores)} pair(s), fewer than the {settings.min_pairs} needed"]
    for e in entries:
        # As the gate's "suite too small" note: can the test alone see a drop of the allowed size?
        if e["mde_test"] is None or e["mde_test"] > settings.max_drop:
            shown = "n/a" if e["mde_test"] is None else f"{e['mde_test']:.3f}"
            reasons.append(f"{e['name']}: with {e['n']} pairs the minimum detectable drop at 80% power is {shown}, "
                           f"above the allowed drop {settings.max_drop:g}")
    return entries, ("insufficient" if reasons else "allow"), reasons


def _price(record: LogRecord, prices: Any, unpriced: set[str]) -> tuple[float | None, int, int]:
    tokens = tokens_of(record) or (0, 0)
    logged = record.number("cost")
    if logged is not None:
        return logged, tokens[0], tokens[1]
    model = record.text("model")
    if model is None or tokens_of(record) is None:
        unpriced.add(model or "(no model logged)")
        return None, tokens[0], tokens[1]
    cost = prices.cost(model, tokens[0], tokens[1]) if prices is not None else None
    if cost is None:
        unpriced.add(model)
    return cost, tokens[0], tokens[1]


def _cost(pairs: Sequence[Pair], prices: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    times = [t for p in pairs for t in (p.green.timestamp(required=False), p.blue.timestamp(required=False)) if t]
    out["window_start"] = min(times).isoformat() if times else None
    out["window_end"] = max(times).isoformat() if times else None
    for variant in VARIANTS:
        unpriced: set[str] = set()
        total, tokens_in, tokens_out, priced = 0.0, 0, 0, 0
        models = set()
        for pair in pairs:
            record = getattr(pair, variant)
            cost, i, o = _price(record, prices, unpriced)
            models.add(record.text("model") or "(no model logged)")
            tokens_in += i
            tokens_out += o
            if cost is not None:
                total += cost
                priced += 1
        out[variant] = {"requests": len(pairs), "priced_requests": priced, "cost": total if priced else None,
                        "input_tokens": tokens_in, "output_tokens": tokens_out, "models": sorted(models),
                        "unpriced_models": sorted(unpriced)}
    out["extra_cost"] = out["green"]["cost"]  # shadow traffic: every green call is an extra one
    return out


def _score_pair(pair: Pair, scorers: Sequence[Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Blue's and green's scores, ``{metric: value}`` each; ScorerError naming the log line."""
    case = pair.case()
    both = []
    for variant in VARIANTS:
        record = getattr(pair, variant)
        try:
            both.append({s.metric: s.evaluate(record.data.get("output"), case).value for s in scorers})
        except ScorerError as exc:
            raise ScorerError(f"{record.path}:{record.line}: {exc}") from None
    return both[0], both[1]


def _score_pairs(pairs: Sequence[Pair], scorers: Sequence[Any],
                 concurrency: int) -> list[tuple[dict[str, float], dict[str, float]]]:
    """Every pair's scores, in the order of ``pairs``, with up to ``concurrency`` pairs
    scored at once (an LLM judge waits on the network; offline scorers gain nothing). On
    the first failure (or Ctrl-C) the pairs not started yet are dropped and the error is
    raised at once (the earliest in pair order among those finished); calls in flight end
    on their own, bounded by the judge's timeout."""
    if concurrency == 1 or len(pairs) < 2:
        return [_score_pair(pair, scorers) for pair in pairs]
    import contextvars
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(min(concurrency, len(pairs)), thread_name_prefix="llm-eval-shadow")
    try:  # each task runs in a copy of this context: its judge calls land in the caller's ledger
        futures = [pool.submit(contextvars.copy_context().run, _score_pair, pair, scorers) for pair in pairs]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and not f.cancelled() and f.exception() is not None), None)
        if failed is not None:
            raise failed.exception()  # type: ignore[misc]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def decide_cutover(pairs: Sequence[Pair], scorers: Sequence[Any], settings: ShadowSettings, *,
                   prices: Any = None, left_out: Mapping[str, int] | None = None,
                   logs: Sequence[str] = (), concurrency: int = 1) -> dict[str, Any]:
    """Score both outputs of every pair with ``scorers`` (bound scorers, up to
    ``concurrency`` pairs at once), compare green with blue overall and per segment, and
    price the window and the judging. Returns the JSON-safe document described in the
    module docstring. ScorerError when a scorer fails, ValueError for ``concurrency < 1``."""
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    metrics = [s.metric for s in scorers]
    judging = accounting.Ledger("shadow comparison")  # the judge calls this comparison makes
    with accounting.use_ledger(judging):
        results = _score_pairs(pairs, scorers, concurrency)
    scored = {pair.request_id: result for pair, result in zip(pairs, results)}
    segment_of = {pair.request_id: pair.segment for pair in pairs}
    overall, decision, reasons = _compare(scored, settings, metrics)
    segments = []
    names = sorted({s for s in segment_of.values() if s is not None})
    for name in names:
        subset = {rid: v for rid, v in scored.items() if segment_of[rid] == name}
        entries, seg_decision, seg_reasons = _compare(subset, settings, metrics)
        segments.append({"segment": name, "pairs": len(subset), "decision": seg_decision, "reasons": seg_reasons,
                         "metrics": entries})
    blocked = [s for s in segments if s["decision"] == "block"]
    if blocked:
        decision = "block"
        reasons = reasons + [f"segment {s['segment']}: {r}" for s in blocked for r in s["reasons"]]
    notes = [f"segment {s['segment']}: too little evidence to judge on its own ({'; '.join(s['reasons'])})"
             for s in segments if s["decision"] == "insufficient"]
    unsegmented = sum(1 for s in segment_of.values() if s is None)
    if names and unsegmented:
        notes.append(f"{unsegmented} pair(s) carry no segment: counted overall only")
    if not pairs:
        decision, reasons = "insufficient", ["no request was logged for both blue and green"]
    return {
        "kind": KIND,
        "decision": decision,
        "reasons": reasons,
        "notes": notes,
        "logs": list(logs),
        "pairs": len(pairs),
        "left_out": dict(left_out or {}),
        "settings": {"alpha": settings.alpha, "max_drop": settings.max_drop, "min_pairs": settings.min_pairs,
                     "sample": settings.sample, "max_pairs": settings.max_pairs, "scorers": metrics},
        "metrics": overall,
        "segments": segments,
        "cost": {**_cost(pairs, prices), "judging": _judging_cost(judging)},
    }


def _judging_cost(ledger: accounting.Ledger) -> dict[str, Any]:
    """What the judge scorers spent on this comparison: ``calls``, ``input_tokens``,
    ``output_tokens``, ``cost`` (USD; None when no call was priced), ``unpriced_models``
    and ``usage_unknown_calls`` (answers without usage: neither their tokens nor a cost
    are counted, so ``cost`` is then a lower bound)."""
    judge = ledger.summary().get("judge")
    if judge is None:
        return {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0, "unpriced_models": [],
                "usage_unknown_calls": 0}
    priced = any(r.cost is not None for r in ledger.records if r.kind == "judge")
    return {"calls": judge["calls"], "input_tokens": judge["input_tokens"], "output_tokens": judge["output_tokens"],
            "cost": judge["cost"] if priced else None, "unpriced_models": judge["unpriced_models"],
            "usage_unknown_calls": judge["usage_unknown_calls"]}


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def render_text(doc: Mapping[str, Any]) -> str:
    lines = [f"shadow comparison: {doc['pairs']} pair(s) of blue and green outputs"]
    left = {k: v for k, v in doc["left_out"].items() if v}
    if left:
        lines.append("left out: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(left.items())))

    def table(entries: Iterable[Mapping[str, Any]], indent: str) -> None:
        for e in entries:
            if e["n"] == 0:
                lines.append(f"{indent}{e['name']}: no pairs")
                continue
            p = e["p_adjusted"] if e["p_adjusted"] is not None else e["p_value"]
            low, high = e["change_ci_low"], e["change_ci_high"]
            ci = "n/a" if low is None or high is None else f"{low:+.3f} to {high:+.3f}"  # one pair has no CI
            lines.append(f"{indent}{e['name']}: blue {_number(e['blue_mean'], '.3f')} -> green "
                         f"{_number(e['green_mean'], '.3f')}, change {_number(e['change'], '+.3f')} (95% CI {ci}), "
                         f"{e['test']} p={_number(p, '.3g')}, n={e['n']}{'  REGRESSED' if e['regressed'] else ''}")

    lines.append("all traffic:")
    table(doc["metrics"], "  ")
    for segment in doc["segments"]:
        lines.append(f"segment {segment['segment']} ({segment['pairs']} pairs): {segment['decision']}")
        table(segment["metrics"], "  ")
    cost = doc["cost"]
    green = cost["green"]
    window = f" {cost['window_start']} to {cost['window_end']}" if cost["window_start"] else ""
    lines.append(f"shadow window{window}: extra inference cost {_money(cost['extra_cost'])} "
                 f"(green: {green['requests']} requests, {green['input_tokens']:,} input + {green['output_tokens']:,} "
                 f"output tokens, {', '.join(green['models'])}); blue cost {_money(cost['blue']['cost'])}")
    for variant in VARIANTS:
        if cost[variant]["unpriced_models"]:
            lines.append(f"note: {variant} cost leaves out unpriced models: {', '.join(cost[variant]['unpriced_models'])}")
    judging = cost.get("judging") or {"calls": 0}
    if judging["calls"]:
        lines.append(f"judging this comparison: {judging['calls']} judge call(s), {judging['input_tokens']:,} input + "
                     f"{judging['output_tokens']:,} output tokens, cost {_money(judging['cost'])}")
        if judging["unpriced_models"]:
            lines.append(f"note: judging cost leaves out unpriced models: {', '.join(judging['unpriced_models'])}")
        if judging["usage_unknown_calls"]:
            lines.append(f"note: judging cost leaves out {judging['usage_unknown_calls']} call(s) answered without usage")
    lines += [f"note: {n}" for n in doc["notes"]]
    verdict = {"allow": "green >= blue: the cutover may go ahead", "block": "the cutover is BLOCKED",
               "insufficient": "too little evidence: no cutover decision"}[doc["decision"]]
    lines.append(f"decision: {doc['decision']}: {verdict}")
    lines += [f"  {r}" for r in doc["reasons"]]
    return "\n".join(lines) + "\n"


def load_shadow_document(path: Path) -> dict[str, Any]:
    """Read a document written by ``llm-eval shadow --format json -o``; LogError otherwise."""
    import json

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LogError(str(path), None, None, "shadow comparison not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LogError(str(path), None, None, f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LogError(str(path), exc.lineno, None, f"not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise LogError(str(path), None, "kind", f"not a shadow comparison written by llm-eval shadow (expected {KIND!r})")
    if doc.get("decision") not in ("allow", "block", "insufficient"):
        raise LogError(str(path), None, "decision", f"must be allow, block or insufficient, got {doc.get('decision')!r}")
    for key, kind in (("segments", list), ("metrics", list), ("reasons", list), ("cost", dict), ("pairs", int)):
        if not isinstance(doc.get(key), kind):
            raise LogError(str(path), None, key, f"must be a {kind.__name__}")
    return doc
