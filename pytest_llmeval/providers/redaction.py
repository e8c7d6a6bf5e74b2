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
# The secrets found, and what they were found in: a copy of the environment's own dict
# (CPython keeps os.environ's data in ``os.environ._data``) and the names registered then.
# Comparing that dict is a few microseconds; scanning os.environ (a decode per name and
# value) is ~45 us, and a case's report alone is redacted string by string (~60 calls).
_found: tuple[dict[Any, Any], frozenset[str], list[str]] | None = None
_HEADER = re.compile(
    r"""(?ix)
    (?P<name>\b(?:authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key)\b)
    (?P<sep>["']?\s*[:=]\s*["']?|["']?\s*,\s*["'])   # name: value, "name": "value", ('name', 'value')
    (?P<value>(?:bearer\s+|basic\s+)?[^\s"',}\])]+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")


def register_key_env(name: str | None) -> None:
    """Also treat the value of the environment variable ``name`` as a secret."""
    if name:
        with _lock:
            _names.add(str(name))


def _secrets() -> list[str]:
    global _found
    raw = getattr(os.environ, "_data", None)
    with _lock:
        names, found_before = frozenset(_names), _found
    if raw is not None and found_before is not None and found_before[1] == names and found_before[0] == raw:
        return found_before[2]
    snapshot = dict(raw) if raw is not None else None  # taken first: a change while scanning means a rescan
    found: set[str] = set()
    for name, value in os.environ.items():
        if name in names or name.upper().endswith(_SUFFIXES):
            for form in (value, value.strip()):
                if len(form) >= _MIN_SECRET:
                    found.add(form)
    secrets = sorted(found, key=len, reverse=True)  # longest first: a key that contains another
    if snapshot is not None:
        with _lock:
            _found = (snapshot, names, secrets)
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
