"""Redaction: the one step every text the plugin writes passes through before it leaves.

This module owns :func:`redact` (and :func:`redact_json`, for nested JSON values) and the
set of secrets it removes:

* the values of the environment variables that hold API keys: every name registered
  with :func:`register_key_env` (the app's and the judge's ``api_key_env``), the
  providers' defaults (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) and any variable whose
  name ends in ``API_KEY``, ``_TOKEN`` or ``_SECRET``; values of 8 characters or more,
  as set and with surrounding whitespace stripped;
* header values that carry credentials wherever they are quoted:
  ``Authorization: Bearer ...``, ``x-api-key: ...``, ``api-key: ...`` (also in JSON
  or repr form, ``"authorization": "..."``) and bare ``Bearer <token>``.

Each is replaced by ``[REDACTED]``. Used for the terminal summary, the JSON report,
Markdown, junit properties and failure messages, cache entries, and error messages that
quote a provider's or a judge's answer. Standard library only.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from typing import Any

__all__ = ["MARK", "redact", "redact_json", "register_key_env"]

MARK = "[REDACTED]"
_DEFAULT_NAMES = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "LITELLM_API_KEY"}
_SUFFIXES = ("API_KEY", "_TOKEN", "_SECRET")
_MIN_SECRET = 8
_names: set[str] = set(_DEFAULT_NAMES)
_lock = threading.Lock()
# The secrets last found, and the variables (name, value) they were found in. Only the
# variables that may hold a secret are compared, read as bytes where the platform has them
# (os.environb: no decoding): pytest rewrites PYTEST_CURRENT_TEST at every test phase, so
# a copy of the whole environment would never match, and decoding all of os.environ costs
# ~45 us per call.
_found: tuple[tuple[tuple[Any, Any], ...], list[str]] | None = None
_HEADER = re.compile(
    r"""(?ix)
    (?P<name>\b(?:authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key)\b)
    (?P<sep>["']?\s*[:=]\s*["']?|["']?\s*,\s*["'])   # name: value, "name": "value", ('name', 'value')
    (?P<value>(?:bearer\s+|basic\s+)?(?:"""  # a mark inside the value is taken whole:
    + re.escape(MARK) + r"""|[^\s"',}\])])+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
# A word each of the two patterns above needs: most texts have none and skip both.
_CREDENTIAL_WORD = re.compile(r"(?i)authorization|api-key|bearer")


def register_key_env(name: str | None) -> None:
    """Also treat the value of the environment variable ``name`` as a secret."""
    if name:
        with _lock:
            _names.add(str(name))


_SUFFIXES_BYTES = tuple(os.fsencode(suffix) for suffix in _SUFFIXES)


@functools.lru_cache(maxsize=8)
def _encoded(names: frozenset[str]) -> frozenset[bytes]:
    """The registered names as os.environb spells them (encoded once per set of names)."""
    return frozenset(os.fsencode(name) for name in names)


def _secret_variables(names: frozenset[str]) -> tuple[tuple[Any, Any], ...]:
    """(name, value) of the environment variables that may hold a secret: a registered name
    or a name ending in API_KEY, _TOKEN or _SECRET (bytes on POSIX, str elsewhere)."""
    if os.supports_bytes_environ:
        wanted, suffixes, environ = _encoded(names), _SUFFIXES_BYTES, os.environb
    else:
        wanted, suffixes, environ = names, _SUFFIXES, os.environ
    # Names first (os.environ lists its keys at once), then each wanted value with .get():
    # another thread (pytest, with PYTEST_CURRENT_TEST) may remove a variable meanwhile,
    # which made environ.items() raise KeyError inside an app's call.
    found = ((name, environ.get(name)) for name in environ if name in wanted or name.upper().endswith(suffixes))
    return tuple((name, value) for name, value in found if value is not None)


def _secrets() -> list[str]:
    global _found
    with _lock:
        names, found_before = frozenset(_names), _found
    variables = _secret_variables(names)
    if found_before is not None and found_before[0] == variables:
        return found_before[1]
    found: set[str] = set()
    for _, raw in variables:
        value = os.fsdecode(raw) if isinstance(raw, bytes) else raw
        for form in (value, value.strip()):
            if len(form) >= _MIN_SECRET:
                found.add(form)
    secrets = sorted(found, key=len, reverse=True)  # longest first: a key that contains another
    with _lock:
        _found = (variables, secrets)
    return secrets


def redact(text: str) -> str:
    """``text`` without API keys and credential header values (see the module docstring)."""
    return _redact(text, _secrets())


def _redact(text: str, secrets: list[str]) -> str:
    if not isinstance(text, str) or not text:
        return text
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MARK)
    if _CREDENTIAL_WORD.search(text) is None:
        return text
    text = _HEADER.sub(lambda m: f"{m['name']}{m['sep']}{MARK}" if m["value"] != MARK else m[0], text)
    return _BEARER.sub(lambda m: f"{m[1]} {MARK}", text)


def redact_json(value: Any) -> Any:
    """A copy of a JSON-like value with every string (keys included) redacted."""
    return _redact_json(value, _secrets())  # the secrets found once for the whole value


def _redact_json(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _redact(value, secrets)
    if isinstance(value, dict):
        return {_redact(k, secrets) if isinstance(k, str) else k: _redact_json(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_json(v, secrets) for v in value]
    return value


def redact_dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``value``, redacted string by string (so the JSON stays valid)."""
    return json.dumps(redact_json(value), **kwargs)
