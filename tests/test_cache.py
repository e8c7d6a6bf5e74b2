"""The record/replay cache: modes, keys, atomic concurrent stores, strict misses, corrupt entries."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_llmeval.errors import CacheError, CacheMissError, ConfigError
from pytest_llmeval.providers.cache import CACHE_MODES, ResponseCache, cache_key, parse_cache_mode

REQUEST = {
    "provider": "openai",
    "base_url": "http://127.0.0.1:8000/v1",
    "model": "gpt-4o",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Héllo ✓"}],
    "temperature": 0.2,
    "tools": [],
    "repeat": 0,
}
RESPONSE = {"choices": [{"message": {"role": "assistant", "content": "Hi"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}


def variant(**changes) -> dict:
    return {**REQUEST, **changes}


# --------------------------------------------------------------------------- modes


def test_parse_cache_mode():
    assert [parse_cache_mode(m) for m in CACHE_MODES] == list(CACHE_MODES)
    assert parse_cache_mode(" ReadWrite ") == "readwrite"
    with pytest.raises(ConfigError, match="off, read, write, readwrite, strict") as info:
        parse_cache_mode("replay")
    assert "'replay'" in str(info.value)
    with pytest.raises(ConfigError):
        ResponseCache(".", "bogus")


# --------------------------------------------------------------------------- keys


def test_key_is_sha256_of_canonical_json_and_order_independent():
    import hashlib

    key = cache_key(REQUEST)
    canonical = json.dumps(REQUEST, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert key == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    reordered = {k: REQUEST[k] for k in reversed(list(REQUEST))}
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in REQUEST["messages"]]
    assert cache_key(reordered) == key
    assert cache_key(json.loads(json.dumps(REQUEST))) == key


@pytest.mark.parametrize("changed", [
    variant(model="gpt-4o-mini"),
    variant(messages=[REQUEST["messages"][0], {"role": "user", "content": "Hello"}]),
    variant(messages=list(reversed(REQUEST["messages"]))),
    variant(temperature=0.3),
    variant(repeat=1),
    variant(base_url="http://127.0.0.1:8001/v1"),
    variant(provider="anthropic"),
    variant(tools=[{"type": "function", "function": {"name": "f"}}]),
    variant(max_tokens=100),
])
def test_key_changes_with_what_changes_the_answer(changed):
    assert cache_key(changed) != cache_key(REQUEST)


def test_key_refuses_credentials_and_non_json():
    for field in ("headers", "api_key", "Authorization"):
        with pytest.raises(ValueError, match="credentials"):
            cache_key(variant(**{field: "secret"}))
    with pytest.raises(TypeError, match="plain JSON"):
        cache_key(variant(temperature=float("nan")))
    with pytest.raises(TypeError, match="plain JSON"):
        cache_key(variant(stop={"a"}))


# --------------------------------------------------------------------------- store / lookup


def test_readwrite_round_trip_layout_and_counters(tmp_path):
    cache = ResponseCache(tmp_path / "cache", "readwrite")
    key = cache_key(REQUEST)
    assert cache.lookup(key) is None
    cache.store(key, REQUEST, RESPONSE)
    path = tmp_path / "cache" / key[:2] / f"{key}.json"
    assert cache.lookup(key) == RESPONSE  # seen before the writer thread wrote it
    cache.flush()
    assert cache.path_for(key) == path and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"key": key, "request": REQUEST, "response": RESPONSE}
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert "Héllo ✓" in text
    assert cache.lookup(key) == RESPONSE
    cache.store(key, REQUEST, RESPONSE)  # identical: left untouched, not counted
    cache.flush()
    assert (cache.hits, cache.misses, cache.writes) == (2, 1, 1)


@pytest.mark.parametrize("mode", ["off", "write"])
def test_modes_that_never_read(tmp_path, mode):
    key = cache_key(REQUEST)
    recorder = ResponseCache(tmp_path, "readwrite")
    recorder.store(key, REQUEST, RESPONSE)
    recorder.flush()
    cache = ResponseCache(tmp_path, mode)
    cache.path_for(key).write_text("corrupt")  # would raise if it were read
    assert cache.lookup(key) is None
    assert (cache.hits, cache.misses) == (0, 0)


@pytest.mark.parametrize(("mode", "writes"), [("off", False), ("read", False), ("strict", False), ("write", True), ("readwrite", True)])
def test_which_modes_store(tmp_path, mode, writes):
    cache = ResponseCache(tmp_path / "c", mode)
    key = cache_key(REQUEST)
    cache.store(key, REQUEST, RESPONSE)
    cache.flush()
    assert cache.path_for(key).exists() is writes
    assert cache.writes == int(writes)
    assert cache.writes_enabled is writes


@pytest.mark.parametrize(("flush_between", "writes"), [(True, 2), (False, 1)], ids=["written-between", "both-waiting"])
def test_write_mode_rerecords(tmp_path, flush_between, writes):
    # Stored twice before the writer ran, a key is written once, with the later entry.
    key = cache_key(REQUEST)
    cache = ResponseCache(tmp_path, "write")
    cache.store(key, REQUEST, RESPONSE)
    if flush_between:
        cache.flush()
    new = {"choices": [{"message": {"role": "assistant", "content": "new"}}]}
    cache.store(key, REQUEST, new)
    cache.flush()
    assert ResponseCache(tmp_path, "read").lookup(key) == new
    assert cache.writes == writes


def test_store_returns_before_the_write_and_flush_waits_for_it(tmp_path, monkeypatch):
    import threading

    from pytest_llmeval.providers import cache as cache_module

    # The writer waits for flush() however slow this machine is, not just half a second.
    monkeypatch.setattr(cache_module, "_BATCH_SECONDS", 60)
    before = set(threading.enumerate())  # other caches of this process may have writers of the same name
    cache = ResponseCache(tmp_path, "readwrite")
    key = cache_key(REQUEST)
    cache.store(key, REQUEST, RESPONSE)
    assert not cache.path_for(key).exists()  # the writer waits for more entries
    assert cache.lookup(key) == RESPONSE  # a lookup sees the entry still waiting
    cache.flush()
    assert cache.path_for(key).is_file() and cache.writes == 1
    writers = [t for t in set(threading.enumerate()) - before if t.name.startswith("llm-eval-cache-writer")]
    assert len(writers) == 1  # one writer thread, until close()
    cache.close()
    assert not writers[0].is_alive()


def test_a_failed_write_is_raised_by_the_next_store_or_flush_once(tmp_path):
    cache = ResponseCache(tmp_path, "readwrite")
    key = cache_key(REQUEST)
    cache.path_for(key).parent.write_text("a file where the entry's folder goes")
    cache.store(key, REQUEST, RESPONSE)
    with pytest.raises(CacheError) as info:
        cache.flush()
    assert str(info.value).startswith(f"{cache.path_for(key)}: cannot write cache entry: ")
    cache.flush()  # raised once
    other = variant(repeat=7)
    cache.store(cache_key(other), other, RESPONSE)
    cache.flush()
    assert cache.writes == 1
    cache.store(key, REQUEST, RESPONSE)
    deadline = time.monotonic() + 10  # the writer's batch runs within half a second
    with pytest.raises(CacheError, match="cannot write cache entry"):
        while time.monotonic() < deadline:
            cache.store(cache_key(other), other, RESPONSE)  # the failure surfaces in a store
            time.sleep(0.05)


def test_read_mode_hit_and_miss(tmp_path):
    key = cache_key(REQUEST)
    recorder = ResponseCache(tmp_path, "write")
    recorder.store(key, REQUEST, RESPONSE)
    recorder.flush()
    cache = ResponseCache(tmp_path, "read")
    assert cache.lookup(key) == RESPONSE
    assert cache.lookup(cache_key(variant(repeat=3))) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_strict_miss_message(tmp_path):
    cache = ResponseCache(tmp_path / "recordings", "strict")
    key = cache_key(REQUEST)
    with pytest.raises(CacheMissError) as info:
        cache.lookup(key, describe="openai gpt-4o")
    message = str(info.value)
    assert message.startswith(f"not in the cache (strict replay): openai gpt-4o, key {key[:12]}; record it with --llm-eval-cache=readwrite")
    assert str(tmp_path / "recordings") in message
    assert isinstance(info.value, CacheError) and cache.misses == 1
    with pytest.raises(CacheMissError, match=f"strict replay\\): key {key[:12]};"):
        cache.lookup(key)
    recorder = ResponseCache(tmp_path / "recordings", "readwrite")
    recorder.store(key, REQUEST, RESPONSE)
    recorder.flush()
    assert cache.lookup(key) == RESPONSE


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", ":1: corrupt cache entry (not JSON"),
    ("[]", "at (top level): [] is not of type 'object'"),
    (json.dumps({"key": "0" * 64, "request": {}, "response": {}}), "holds key '000000000000'"),
    (json.dumps({"key": "KEY", "request": {}}), "'response' is a required property"),
    # The answer of one of the plugin's clients must have its protocol's shape.
    (json.dumps({"key": "KEY", "request": REQUEST, "response": {"choices": []}}), "at response/choices: [] should be non-empty"),
    (json.dumps({"key": "KEY", "request": REQUEST, "response": {"choices": [{"message": {"content": 5}}]}}),
     "at response/choices/0/message/content: 5 is not of type 'string', 'null'"),
    (json.dumps({"key": "KEY", "request": REQUEST, "response": {**RESPONSE, "usage": {"prompt_tokens": -1}}}),
     "at response/usage/prompt_tokens: -1 is less than the minimum of 0"),
    (json.dumps({"key": "KEY", "request": {**REQUEST, "provider": "anthropic"}, "response": RESPONSE}),
     "'content' is a required property"),
    ('{"key": "KEY", "request": {}, "response": {"x": NaN}}', "at response/x: NaN is not a finite number"),
    ('{"key": "KEY", "key": "KEY", "request": {}, "response": {}}', "key 'key' is given twice"),
    ('{"key": "KEY", "request": {}, "response": ' + "[" * 5000 + "]" * 5000 + "}", "nested more than 100 levels deep"),
])
def test_corrupt_entry_names_the_file(tmp_path, content, problem):
    key = cache_key(REQUEST)
    cache = ResponseCache(tmp_path, "readwrite")
    path = cache.path_for(key)
    path.parent.mkdir(parents=True)
    path.write_text(content.replace("KEY", key), encoding="utf-8")
    with pytest.raises(CacheError) as info:
        cache.lookup(key)
    assert not isinstance(info.value, CacheMissError)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_bad_keys_and_requests_are_refused(tmp_path):
    cache = ResponseCache(tmp_path, "readwrite")
    for bad in ("../../etc/passwd", "ABC", cache_key(REQUEST).upper()):
        with pytest.raises(ValueError, match="not a cache key"):
            cache.lookup(bad)
    with pytest.raises(ValueError, match="credentials"):
        cache.store(cache_key(REQUEST), variant(headers={"authorization": "Bearer sk-x"}), RESPONSE)
    assert not any(tmp_path.iterdir())


def test_concurrent_stores_are_atomic(tmp_path):
    root = tmp_path / "cache"
    cache = ResponseCache(root, "readwrite")
    requests = [variant(repeat=i) for i in range(150)]
    jobs = requests + requests[:50]  # 200 stores, 50 of them duplicates
    start = threading.Barrier(32)

    def store(job_index: int) -> None:
        if job_index < 32:
            start.wait()
        request = jobs[job_index]
        cache.store(cache_key(request), request, {**RESPONSE, "repeat": request["repeat"]})

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(store, range(len(jobs))))
    cache.flush()

    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) == 150
    assert not [p for p in files if p.suffix != ".json" or p.name.startswith(".")]  # no temp files left
    reader = ResponseCache(root, "strict")
    for request in requests:
        assert reader.lookup(cache_key(request))["repeat"] == request["repeat"]
    assert 150 <= cache.writes <= 200


_WRITER = """
import sys
from pathlib import Path
from pytest_llmeval.providers.cache import ResponseCache, cache_key
cache = ResponseCache(Path(sys.argv[1]), "readwrite")
for i in range(int(sys.argv[2]), int(sys.argv[2]) + 40):
    request = {"model": "m", "repeat": i}
    cache.store(cache_key(request), request, {"repeat": i})
"""


def test_concurrent_stores_from_processes(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(start)]) for start in (0, 20, 20, 40)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 80 and all(p.suffix == ".json" and not p.name.startswith(".") for p in files)
    reader = ResponseCache(root, "strict")
    for i in range(80):
        request = {"model": "m", "repeat": i}
        assert reader.lookup(cache_key(request)) == {"repeat": i}


def test_modules_import_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import pytest_llmeval.providers.accounting, pytest_llmeval.providers.pricing, pytest_llmeval.providers.cache\n"
        "print(sorted(m for m in ('yaml', 'numpy', 'pytest', '_pytest') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
