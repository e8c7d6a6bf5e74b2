"""The run-wide A/B variants and routed models (``--llm-eval-variants``, ``--llm-eval-routes``
and their ini keys, declared in :mod:`pytest_llmeval.glue.options`), resolved for runs with
``--llm-eval`` only.

Kept out of options.py, which loads on every pytest run: pytest sends every module an
installed plugin imports through its assertion rewriter, which, where it cannot cache
(PYTHONDONTWRITEBYTECODE), parses and compiles the module's source on every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .options import _effect, _ini, _output_path

__all__ = ["run_variants"]


def run_variants(config: Any) -> Any:
    """The run-wide variants (a ``RunVariants``): a variants file and/or the routes of an llmops config."""
    from ..core.variants import RunVariants, load_variant_file

    option, root = config.option, Path(config.rootpath)
    min_effect = option.llm_eval_min_effect or _ini(config, "llm_eval_min_effect", _effect)
    parity = option.llm_eval_parity_margin or _ini(config, "llm_eval_parity_margin", _effect)
    variants_path = _output_path(option.llm_eval_variants, config.getini("llm_eval_variants"), root)
    routes_path = _output_path(option.llm_eval_routes, config.getini("llm_eval_routes"), root)
    variants = load_variant_file(variants_path) if variants_path is not None else {}
    routes = _routes(routes_path) if routes_path is not None else ()
    return RunVariants(variants, routes, parity, min_effect)


def _routes(path: Path) -> tuple[Any, ...]:
    """Every model that gets traffic in the config's routing, and the fallback, as route
    targets (one per provider:model, the primary first). ConfigError for a config that
    cannot be read or a route the plugin's clients cannot call."""
    from ..check import ConfigLoadError, load_config
    from ..check.rules import routes_of
    from ..core.variants import RouteTarget
    from ..providers.config import PROVIDERS

    try:
        loaded = load_config(path)
    except ConfigLoadError as exc:
        raise ConfigError(f"--llm-eval-routes: {exc}") from None
    routing = routes_of(loaded)
    traffic = routing.traffic()
    if not traffic:
        raise ConfigError(f"{path}: routing has no route with traffic: nothing to evaluate")
    primary = routing.primary
    order = sorted(traffic.items(), key=lambda item: (primary is None or item[0] != primary.key, -item[1][0]))
    targets = []
    for key, (share, routes) in order:
        targets.append(RouteTarget(_route_name(routes[0].label), routes[0].label, routes[0].provider, routes[0].model, share))
    fallback = routing.fallback
    if fallback is not None and fallback.key not in traffic:
        targets.append(RouteTarget("fallback", fallback.label, fallback.provider, fallback.model, 0.0, True))
    for target in targets:
        if target.provider not in PROVIDERS:
            raise ConfigError(f"{path}: {target.label}: provider {target.provider!r} cannot be called through "
                              f"pytest-llmeval's clients ({', '.join(PROVIDERS)}): it cannot be evaluated")
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: routes {', '.join(names)} do not have distinct names")
    return tuple(targets)


def _route_name(label: str) -> str:
    """``routing.primary`` -> primary; ``routing.routes[2] (fast)`` -> fast; ``routing.routes[2]`` -> routes-2."""
    if " (" in label:
        return label.split(" (", 1)[1].rstrip(")")
    name = label.removeprefix("routing.")
    return name.replace("[", "-").rstrip("]")
