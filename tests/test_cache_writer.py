"""The cache's writer process: entry files written off the run's GIL, and nothing lost when it cannot run."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading

import pytest

from pytest_llmeval.providers import cache as cache_module
from pytest_llmeval.providers.cache import ResponseCache, cache_key
from pytest_llmeval.providers.cache_writer import WriterProcess, _serve, entry_text, main, write_entry

REQUEST = {"provider": "openai", "model": "gpt-4o", "messages": [{"role": "user", "content": "Héllo ✓ \u2028"}], "repeat": 0}
RESPONSE = {"choices": [{"message": {"role": "assistant", "content": "Hi\nthere"}}], "usage": {"prompt_tokens": 5}}


def _request(i: int) -> dict:
    return {**REQUEST, "repeat": i}


def _in_process_writes(monkeypatch) -> list[str]:
    """Names of the threads that write entry files in this process (through write_batch), one per entry."""
    threads: list[str] = []
    write = cache_module.write_batch

    def spy(root, batch):
        threads.extend(threading.current_thread().name for _ in batch)
        return write(root, batch)

    monkeypatch.setattr(cache_module, "write_batch", spy)
    return threads


def test_entries_are_written_by_a_child_process_in_the_committed_format(tmp_path, monkeypatch):
    in_process = _in_process_writes(monkeypatch)
    cache = ResponseCache(tmp_path, "readwrite")
    keys = [cache_key(_request(i)) for i in range(3)]
    for i, key in enumerate(keys):
        cache.store(key, _request(i), RESPONSE)
    cache.flush()
    assert in_process == [] and cache.writes == 3
    for i, key in enumerate(keys):
        text = cache.path_for(key).read_text(encoding="utf-8")
        # Indented, sorted, non-ASCII kept: the format entries had when this process wrote them.
        entry = {"key": key, "request": _request(i), "response": RESPONSE}
        assert text == json.dumps(entry, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    cache.store(keys[0], _request(0), RESPONSE)  # the same entry again: left untouched, not counted
    cache.close()
    assert cache.writes == 3 and ResponseCache(tmp_path, "strict").lookup(keys[2]) == RESPONSE


@pytest.mark.parametrize("error", [OSError, RuntimeError])
def test_the_writer_thread_writes_when_no_child_process_can_start(tmp_path, monkeypatch, error):
    def no_process(root):
        raise error("no child processes here")

    monkeypatch.setattr(cache_module, "WriterProcess", no_process)
    in_process = _in_process_writes(monkeypatch)
    cache = ResponseCache(tmp_path, "readwrite")
    for i in range(3):
        cache.store(cache_key(_request(i)), _request(i), RESPONSE)
    cache.close()
    assert cache.writes == 3 and len(in_process) == 3
    assert threading.current_thread().name not in in_process
    assert ResponseCache(tmp_path, "strict").lookup(cache_key(_request(1))) == RESPONSE


def test_a_child_that_dies_loses_no_entry(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "_BATCH_SECONDS", 60)  # a batch goes when flushed, however slow the machine
    batches: list[int] = []

    class Killed(WriterProcess):
        def write(self, batch):
            batches.append(len(batch))
            if len(batches) == 2:  # the child dies before its second batch
                os.kill(self.pid, signal.SIGKILL)
                self._proc.wait()
            return super().write(batch)

    monkeypatch.setattr(cache_module, "WriterProcess", Killed)
    in_process = _in_process_writes(monkeypatch)
    cache = ResponseCache(tmp_path, "readwrite")
    cache.store(cache_key(_request(0)), _request(0), RESPONSE)
    cache.flush()
    assert in_process == []
    for i in range(1, 4):
        cache.store(cache_key(_request(i)), _request(i), RESPONSE)
    cache.flush()  # no error: the writer thread wrote the batch the child never took
    for i in range(5, 7):
        cache.store(cache_key(_request(i)), _request(i), RESPONSE)
    cache.close()
    assert batches == [1, 3] and len(in_process) == 5 and cache.writes == 6
    reader = ResponseCache(tmp_path, "strict")
    assert all(reader.lookup(cache_key(_request(i))) == RESPONSE for i in (0, 1, 2, 3, 5, 6))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to one process")
def test_the_child_ignores_ctrl_c(tmp_path):
    process = WriterProcess(tmp_path)
    try:
        assert os.getpgid(process.pid) == process.pid  # a group of its own: a terminal's Ctrl-C never reaches it
        assert process.write([]) == (0, [])  # serving
        os.kill(process.pid, signal.SIGINT)  # and a SIGINT sent to it anyway is ignored
        key = cache_key(REQUEST)
        compact = json.dumps({"key": key, "request": REQUEST, "response": RESPONSE}, ensure_ascii=False)
        assert process.write([(key, compact)]) == (1, [])
    finally:
        process.close()
    assert ResponseCache(tmp_path, "strict").lookup(key) == RESPONSE


def test_the_protocol_answers_each_batch_with_its_files_and_errors(tmp_path):
    good = cache_key(REQUEST)
    blocked = cache_key(_request(1))
    (tmp_path / blocked[:2]).write_text("a file where the entry's folder goes")
    compact = json.dumps({"key": good, "request": REQUEST, "response": RESPONSE}, ensure_ascii=False)
    lines = [f"{good} {compact}\n", f"{good} not json\n", f"{blocked} {compact}\n", ".\n", f"{good} {compact}\n", ".\n"]
    answers = io.BytesIO()
    _serve(io.BytesIO("".join(lines).encode("utf-8")), answers, str(tmp_path))
    first, second = (json.loads(line) for line in answers.getvalue().splitlines())
    assert first["written"] == 1 and [key for key, _ in first["errors"]] == [good, blocked]
    assert first["errors"][0][1].startswith("JSONDecodeError: ") and first["errors"][1][1]
    assert second == {"written": 0, "errors": []}  # already on disk with the same text


def test_write_entry_rewrites_only_a_changed_entry(tmp_path):
    key = cache_key(REQUEST)
    compact = json.dumps({"key": key, "response": RESPONSE})
    assert write_entry(tmp_path, key, compact) is True
    assert write_entry(tmp_path, key, compact) is False
    assert write_entry(tmp_path, key, json.dumps({"key": key, "response": {}})) is True
    assert (tmp_path / key[:2] / f"{key}.json").read_text(encoding="utf-8") == entry_text(json.dumps({"response": {}, "key": key}))


def test_main_refuses_bad_arguments(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_forked_copy_of_the_process_neither_keeps_the_writer_open_nor_loses_its_entries(tmp_path, monkeypatch):
    # multiprocessing's "fork" start method in an app under test: the copy inherits the
    # cache, its writer process's pipes, and no writer thread.
    from pytest_llmeval.providers import cache_writer

    monkeypatch.setattr(cache_writer, "_CLOSE_SECONDS", 120)  # a child kept open would be killed, not time out quietly
    started: list[WriterProcess] = []

    class Recorded(WriterProcess):
        def __init__(self, root):
            super().__init__(root)
            started.append(self)

    monkeypatch.setattr(cache_module, "WriterProcess", Recorded)
    cache = ResponseCache(tmp_path, "readwrite")
    cache.store(cache_key(_request(0)), _request(0), RESPONSE)
    cache.flush()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: outlives the parent's close, then records an entry of its own
        status = 1
        try:
            os.close(go_write)
            os.read(go_read, 1)
            cache.store(cache_key(_request(1)), _request(1), RESPONSE)
            cache.close()
            status = 0
        finally:
            os._exit(status)
    os.close(go_read)
    try:
        cache.close()  # the copy still runs: the child must see the end of its input anyway
        assert started[0].exit_code == 0  # it ended on its own, not killed after the wait
    finally:
        os.write(go_write, b"x")
        os.close(go_write)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    reader = ResponseCache(tmp_path, "strict")
    assert reader.lookup(cache_key(_request(0))) == RESPONSE and reader.lookup(cache_key(_request(1))) == RESPONSE
