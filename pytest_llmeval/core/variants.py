"""A/B variants of a suite: what each variant changes, parsed and checked once at collection.

A suite with variants runs every case under every variant (``variants={"control": {...},
"concise": {"prompt": "support_concise", "model": "gpt-4o-mini"}}`` in the marker, a
``--llm-eval-variants`` file, or the models of ``--llm-eval-routes``). A variant's
settings are a mapping of:

* provider settings (``model``, ``provider``, ``base_url``, ... any
  :class:`~pytest_llmeval.providers.config.ProviderConfig` field): the plugin's clients,
  bare or configured, use them for the app calls of the variant's cases (never for an
  LLM judge's calls);
* ``prompt``: a prompt of the registry, ``name`` or ``name@version-or-label`` (the
  version or label is checked against the prompt file, so a stale pin fails collection);
* any other keyword the target accepts.

Every setting whose name the target accepts is passed to it as a keyword argument (the
prompt as its bare name), so one target serves every variant; the recorder exposes the
variant as ``llm_eval.variant``. A setting that reaches neither the clients nor the target
is refused: a variant that silently changes nothing would compare a thing with itself.
Values must be JSON values (they go to the report and into the cache key). No pytest here.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError, LLMEvalError
from ..models import VariantSpec
from ..providers.config import ProviderConfig

__all__ = ["CONTROL", "PROMPT_KEY", "VARIANT_MARKER_ARGS", "RouteTarget", "RunVariants", "Variant", "load_variant_file",
           "parse_variants", "plan_variants", "route_variants", "suite_variants"]

CONTROL = "control"
PROMPT_KEY = "prompt"
PROVIDER_KEYS = frozenset(ProviderConfig.__dataclass_fields__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_VARIANTS = 32


@dataclass(frozen=True)
class Variant:
    """One variant as the runner uses it: provider overrides, target keyword arguments."""

    name: str
    settings: Mapping[str, Any]  # as given
    provider: Mapping[str, Any] = field(default_factory=dict)  # ProviderConfig overrides
    prompt: str | None = None  # the registry prompt's name
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # passed to the target
    cache_key: str = ""  # digest of name and settings: part of every cached call's key

    @property
    def model(self) -> str | None:
        return self.provider.get("model")


@dataclass(frozen=True)
class RouteTarget:
    """A model that gets traffic in an llmops config's routing (see :func:`route_variants`)."""

    name: str  # variant name: primary, secondary, the route's name, routes[i], fallback
    label: str  # routing.primary, routing.routes[1] (fast), routing.fallback
    provider: str
    model: str
    share: float
    fallback: bool = False


def parse_variants(where: str, value: Any, lines: Mapping[Any, int] | None = None) -> dict[str, dict[str, Any]]:
    """Validate a ``variants=`` mapping (name -> settings); returns plain dicts in order.
    ``lines`` (variant name -> line) puts the line of a bad variant into the message."""
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: variants= must be a non-empty mapping of variant name to settings, got {value!r}")
    if len(value) < 2:
        raise ConfigError(f"{where}: variants= needs at least two variants (a control and one to compare with it)")
    if len(value) > _MAX_VARIANTS:
        raise ConfigError(f"{where}: variants= has {len(value)} variants; at most {_MAX_VARIANTS}")
    out: dict[str, dict[str, Any]] = {}
    base = where
    for name, settings in value.items():
        where = f"{base}:{lines[name]}" if lines and name in lines else base
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: variant name {name!r} must be 1-64 letters, digits, '_', '.', '-' "
                              "(it becomes part of the test ids)")
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where}: variant {name!r}: settings must be a mapping, got {settings!r}")
        for key, item in settings.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise ConfigError(f"{where}: variant {name!r}: setting {key!r} must be a keyword name")
            try:
                json.dumps(item, allow_nan=False)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: variant {name!r}: setting {key}={item!r} must be a JSON value "
                                  "(string, number, bool, null, list, mapping): it goes to the report and the cache key") from None
        out[name] = dict(settings)
    return out


def plan_variants(
    where: str,
    variants: Mapping[str, Mapping[str, Any]],
    target: Callable[..., Any] | None,
    *,
    control: str | None = None,
    baseline_variant: str | None = None,
    min_effect: float,
    non_inferiority: Mapping[str, float] | None = None,
    parity_margin: float | None = None,
    routes: Sequence[RouteTarget] = (),
    prompt_lookup: Callable[[str], tuple[str, str | None]] | None = None,
) -> tuple[VariantSpec, dict[str, Variant]]:
    """Check every variant against the provider settings, the prompt registry and the
    target's signature; returns the spec (for reports) and the runtime variants.

    ``prompt_lookup(name)`` returns the registry prompt's (version, label) or raises
    LLMEvalError. Raises ConfigError naming the suite, the variant and the setting."""
    names = list(variants)
    control = CONTROL if control is None and CONTROL in variants else control or names[0]
    if control not in variants:
        raise ConfigError(f"{where}: control={control!r} is not a variant (variants: {', '.join(names)})")
    baseline_variant = baseline_variant or control
    if baseline_variant not in variants:
        raise ConfigError(f"{where}: baseline_variant={baseline_variant!r} is not a variant (variants: {', '.join(names)})")
    if not (isinstance(min_effect, (int, float)) and not isinstance(min_effect, bool) and 0 < min_effect <= 1):
        raise ConfigError(f"{where}: min_effect= must be a number in (0, 1], got {min_effect!r}")
    accepts = _accepted(target)
    runtime: dict[str, Variant] = {}
    for name, settings in variants.items():
        provider = {k: v for k, v in settings.items() if k in PROVIDER_KEYS}
        try:
            ProviderConfig().with_overrides(provider)
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{where}: variant {name!r}: {exc}") from None
        prompt = None
        if PROMPT_KEY in settings:
            prompt = _check_prompt(where, name, settings[PROMPT_KEY], prompt_lookup)
        kwargs = {}
        for key, item in settings.items():
            if accepts(key):
                kwargs[key] = prompt if key == PROMPT_KEY else item
            elif key == PROMPT_KEY or key not in PROVIDER_KEYS:
                reason = ("the marker has no target=: read it from llm_eval.variant in the test body" if target is None
                          else f"the target {getattr(target, '__name__', target)!r} takes no {key!r} argument")
                if target is not None:
                    raise ConfigError(f"{where}: variant {name!r}: setting {key!r} would change nothing: {reason} "
                                      "(and it is not a provider setting)")
        digest = hashlib.sha256(json.dumps([name, settings], sort_keys=True).encode("utf-8")).hexdigest()[:16]
        runtime[name] = Variant(name, dict(settings), provider, prompt, kwargs, digest)
    spec = VariantSpec(
        variants=tuple((name, dict(settings)) for name, settings in variants.items()),
        control=control,
        baseline_variant=baseline_variant,
        min_effect=float(min_effect),
        non_inferiority=dict(non_inferiority or {}),
        parity_margin=parity_margin,
        routes={r.name: {"route": r.label, "model": f"{r.provider}:{r.model}", "share": r.share, "fallback": r.fallback}
                for r in routes},
    )
    return spec, runtime


def _accepted(target: Callable[..., Any] | None) -> Callable[[str], bool]:
    if target is None:
        return lambda key: False
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return lambda key: True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return lambda key: True
    names = {p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return names.__contains__


def _check_prompt(where: str, variant: str, ref: Any, lookup: Callable[[str], tuple[str, str | None]] | None) -> str:
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"{where}: variant {variant!r}: prompt must be a prompt name, optionally @version or @label, got {ref!r}")
    name, _, pin = ref.partition("@")
    if lookup is None:
        return name
    try:
        version, label = lookup(name)
    except LLMEvalError as exc:
        raise ConfigError(f"{where}: variant {variant!r}: prompt {ref!r}: {exc}") from None
    if pin and pin not in (version, label):
        raise ConfigError(f"{where}: variant {variant!r}: prompt {ref!r}: the registry's {name} is version {version}"
                          + (f" (label {label})" if label else "") + f", not {pin}: the variant would run another prompt")
    return name


def route_variants(routes: Sequence[RouteTarget]) -> dict[str, dict[str, Any]]:
    """Variant settings for routed models: one variant per distinct ``provider:model``
    (named after its first route), the primary (largest share) first."""
    out: dict[str, dict[str, Any]] = {}
    for route in routes:
        out[route.name] = {"provider": route.provider, "model": route.model}
    return out


def load_variant_file(path: Any) -> dict[str, dict[str, Any]]:
    """A ``--llm-eval-variants`` YAML or JSON file: ``{name: {setting: value}}``."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the variants file: {exc}") from None
    if len(text) > 1_000_000:
        raise ConfigError(f"{path}: the variants file is larger than 1 MB")
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"{path}:{mark.line + 1 if mark else '?'}: invalid YAML: {exc.problem}") from None
    lines = {key.value: key.start_mark.line + 1 for key, _ in node.value} if isinstance(node, yaml.MappingNode) else {}
    return parse_variants(str(path), data, lines)



VARIANT_MARKER_ARGS = ("variants", "control", "baseline_variant", "min_effect", "non_inferiority")


@dataclass(frozen=True)
class RunVariants:
    """The run-wide variant settings: a ``--llm-eval-variants`` file's variants (for suites
    whose marker has none), the routed models of ``--llm-eval-routes`` and the parity
    margin, and the default minimum effect (ini ``llm_eval_min_effect``)."""

    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    routes: tuple[RouteTarget, ...] = ()
    parity_margin: float = 0.05
    min_effect: float = 0.05


def suite_variants(
    where: str,
    kwargs: Mapping[str, Any],
    target: Callable[..., Any] | None,
    run: RunVariants,
    prompt_lookup: Callable[[str], tuple[str, str | None]] | None = None,
) -> tuple[VariantSpec | None, dict[str, Variant]]:
    """A suite's variants from its marker (``variants=``, ``control=``,
    ``baseline_variant=``, ``min_effect=``, ``non_inferiority=``), else the run's routes,
    else the run's variants file; (None, {}) for a suite without variants."""
    routes: Sequence[RouteTarget] = ()
    parity = None
    if "variants" in kwargs:
        variants = parse_variants(f"{where}: variants=", kwargs["variants"])
    elif run.routes:
        variants, routes, parity = route_variants(run.routes), run.routes, run.parity_margin
    elif run.variants:
        variants = dict(run.variants)
    else:
        extra = [key for key in VARIANT_MARKER_ARGS if key in kwargs]
        if extra:
            raise ConfigError(f"{where}: {', '.join(extra)}= only apply with variants= (or --llm-eval-variants)")
        return None, {}
    margins = kwargs.get("non_inferiority", {})
    if not isinstance(margins, Mapping) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 for v in margins.values()):
        raise ConfigError(f"{where}: non_inferiority= must map metric names to margins in [0, 1], got {margins!r}")
    control = kwargs.get("control", routes[0].name if routes else None)
    return plan_variants(where, variants, target, control=control, baseline_variant=kwargs.get("baseline_variant"),
                         min_effect=kwargs.get("min_effect", run.min_effect),
                         non_inferiority={str(k): float(v) for k, v in margins.items()},
                         parity_margin=parity, routes=routes, prompt_lookup=prompt_lookup)
