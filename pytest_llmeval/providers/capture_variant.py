"""A/B variants applied to captured SDK calls: the running variant's model and endpoint
settings written into the request an app's SDK is about to send.

The plugin's own clients read a variant's provider settings from
:func:`~pytest_llmeval.providers.runtime.variant_overrides` when they build a request. An
app that calls the ``openai`` or ``anthropic`` SDK (or litellm, LangChain) builds its own
request with its own model, so :mod:`~pytest_llmeval.providers.capture` hands every
captured request to :func:`apply` before sending it. What is rewritten, and only for an
*app* call (never a judge's) of a *generation* API (``/chat/completions``, ``/responses``,
``/messages``; an ``/embeddings`` call keeps its model and endpoint):

* ``model``: the ``"model"`` field of the JSON body is replaced;
* ``base_url``: the URL becomes ``{base_url}/{endpoint}`` (``chat/completions``,
  ``responses`` or ``messages``), as the plugin's clients build it, so ``base_url`` ends in
  ``/v1`` for both protocols; the query string is kept;
* ``api_key_env``: the credential header the request carries (``x-api-key``, ``api-key``
  or ``Authorization: Bearer``; with none, ``x-api-key`` for Anthropic and
  ``Authorization`` for OpenAI) gets the key read from that variable, or is dropped when
  the variable is unset (as the plugin's clients send no key then);
* ``api_version``: the ``api-version`` query parameter is set.

A variant that sets ``provider`` applies only to calls of that protocol (``anthropic``:
``/messages``, ``openai``: the others): a request cannot be translated from one protocol
to the other, so an app on the other SDK keeps its own model, and the comparison's
"setting did not reach the app" check reports it. The other provider settings
(``timeout``, ``max_retries``, ``rate_limit``, ``auth_header``, ...) are the SDK client's
own and are not applied. Standard library only: the request class is the one of the
HTTP module (httpx or httpx2) that carries the call.
"""

from __future__ import annotations

import json
from typing import Any

from . import accounting, runtime

__all__ = ["GENERATION_APIS", "apply"]

GENERATION_APIS = {"chat": "chat/completions", "responses": "responses", "messages": "messages"}
_HEADERS_TO_REBUILD = ("content-length", "host")
_CREDENTIAL_HEADERS = ("x-api-key", "api-key", "authorization")


def apply(request: Any, module: Any, api: str, body: dict[str, Any]) -> tuple[Any, dict[str, Any], tuple[str, ...]]:
    """``(request, body, applied)``: the request to send with the running variant's
    settings written in (the same objects when nothing applies) and the names of the
    settings that changed it. ``module`` is the httpx-like module whose ``Request`` class
    builds the new request; ``body`` is the parsed JSON body of ``request``."""
    overrides = runtime.variant_overrides()
    endpoint = GENERATION_APIS.get(api)
    if not overrides or endpoint is None or accounting.current_kind() != "app":
        return request, body, ()
    provider = "anthropic" if api == "messages" else "openai"
    if overrides.get("provider", provider) != provider:
        return request, body, ()
    applied: list[str] = []
    new_body = body
    model = overrides.get("model")
    if isinstance(model, str) and model and body.get("model") != model:
        new_body = {**body, "model": model}
        applied.append("model")
    url = request.url
    base_url = overrides.get("base_url")
    if isinstance(base_url, str) and base_url:
        url = module.URL(f"{base_url.rstrip('/')}/{endpoint}").copy_with(query=url.query or None)
        applied.append("base_url")
    api_version = overrides.get("api_version")
    if isinstance(api_version, str) and api_version:
        url = url.copy_set_param("api-version", api_version)
        applied.append("api_version")
    headers = request.headers.copy()
    key_env = overrides.get("api_key_env")
    if isinstance(key_env, str) and key_env:
        _set_key(headers, provider, key_env)
        applied.append("api_key_env")
    if not applied:
        return request, body, ()
    content = request.content if new_body is body else json.dumps(new_body, ensure_ascii=False).encode("utf-8")
    for name in _HEADERS_TO_REBUILD:  # the new request computes them from its own content and URL
        if name in headers:
            del headers[name]
    rebuilt = module.Request(request.method, url, headers=headers, content=content, extensions=request.extensions)
    return rebuilt, new_body, tuple(applied)


def _set_key(headers: Any, provider: str, key_env: str) -> None:
    from .config import ProviderConfig

    key = ProviderConfig(provider=provider, api_key_env=key_env).api_key()  # stripped; refused if malformed
    carried = [name for name in _CREDENTIAL_HEADERS if name in headers]
    name = carried[0] if carried else ("x-api-key" if provider == "anthropic" else "authorization")
    for old in carried:
        del headers[old]
    if key is not None:
        headers[name] = f"Bearer {key}" if name == "authorization" else key
