"""The loopback LLM server: real HTTP over loopback, checked with httpx."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import httpx
import pytest

from pytest_llmeval.testing import Faults, LoopbackLLMServer


def chat(content, **extra) -> dict:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra}


@pytest.fixture
def server():
    with LoopbackLLMServer() as server:
        yield server


@pytest.fixture
def client():
    with httpx.Client(timeout=5.0) as client:
        yield client


# -- protocol shapes -------------------------------------------------------------------


def test_openai_response_shape_and_usage(server, client):
    server.default_answer = "the answer is four"
    body = {
        "model": "gpt-test",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "what is two plus two"},
        ],
    }
    response = client.post(f"{server.base_url}/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-test"
    assert data["choices"] == [{
        "index": 0,
        "message": {"role": "assistant", "content": "the answer is four"},
        "finish_reason": "stop",
    }]
    assert data["usage"] == {"prompt_tokens": 3 + 5, "completion_tokens": 4, "total_tokens": 12}


def test_openai_model_defaults_to_server_model_and_tokens_are_at_least_one(client):
    with LoopbackLLMServer(model="my-model", default_answer="") as server:
        data = client.post(f"{server.base_url}/chat/completions",
                           json={"messages": [{"role": "user", "content": ""}]}).json()
    assert data["model"] == "my-model"
    assert data["usage"] == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}


def test_anthropic_response_shape_and_usage(server, client):
    server.default_answer = "Paris"
    body = {
        "model": "claude-test",
        "max_tokens": 64,
        "system": "Answer in one word.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "capital of France?"}]}],
    }
    response = client.post(f"{server.base_url}/messages", json=body,
                           headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    data = response.json()
    assert data["id"].startswith("msg_")
    assert data["type"] == "message"
    assert data["role"] == "assistant"
    assert data["model"] == "claude-test"
    assert data["content"] == [{"type": "text", "text": "Paris"}]
    assert data["stop_reason"] == "end_turn"
    assert data["usage"] == {"input_tokens": 4 + 3, "output_tokens": 1}
    assert server.received_headers[0]["x-api-key"] == "sk-test"
    # The anthropic SDK appends /v1/messages to its base URL, which is server.url.
    assert client.post(f"{server.url}/v1/messages", json=body).status_code == 200


def test_table_looks_up_the_last_user_message(client):
    table = {"first": "one", "second": "two"}
    with LoopbackLLMServer(table=table, default_answer="fallback") as server:
        def ask(messages):
            response = client.post(f"{server.base_url}/chat/completions", json={"messages": messages})
            return response.json()["choices"][0]["message"]["content"]

        assert ask([{"role": "user", "content": "first"}]) == "one"
        assert ask([
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "second"},
        ]) == "two"
        assert ask([{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}]) == "one"
        assert ask([{"role": "user", "content": [{"type": "text", "text": "second"}]}]) == "two"
        assert ask([{"role": "user", "content": "unknown"}]) == "fallback"
        server.table = {"unknown": "now known"}  # mutable while running
        assert ask([{"role": "user", "content": "unknown"}]) == "now known"


def test_answer_callable_gets_the_request_and_wins_over_table(client):
    seen: list[dict] = []

    def answer(request: dict) -> str:
        seen.append(request)
        return f"{request['model']}|{request['temperature']}|{request['response_format']['type']}"

    with LoopbackLLMServer(answer, table={"q": "from table"}) as server:
        body = chat("q", temperature=0.3, response_format={"type": "json_object"})
        data = client.post(f"{server.base_url}/chat/completions", json=body).json()
        assert data["choices"][0]["message"]["content"] == "gpt-test|0.3|json_object"
        assert seen == [body]
        assert server.received == [body]
        server.answer = None
        data = client.post(f"{server.base_url}/chat/completions", json=body).json()
        assert data["choices"][0]["message"]["content"] == "from table"


def test_list_of_parts_content_counts_text_parts_only(server, client):
    content = [
        {"type": "text", "text": "describe this image"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "briefly"},
    ]
    data = client.post(f"{server.base_url}/chat/completions", json=chat(content)).json()
    assert data["usage"]["prompt_tokens"] == 4


def test_answer_callable_that_raises_is_a_500(client):
    def answer(request: dict) -> str:
        raise RuntimeError("pipeline exploded")

    with LoopbackLLMServer(answer) as server:
        response = client.post(f"{server.base_url}/chat/completions", json=chat("hi"))
        assert response.status_code == 500
        error = response.json()["error"]
        assert "pipeline exploded" in error["message"] and "RuntimeError" in error["message"]
        server.answer = lambda request: 42  # not a str
        response = client.post(f"{server.base_url}/chat/completions", json=chat("hi"))
        assert response.status_code == 500
        assert "expected str" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", [
    "/chat/completions",
    "/v1/chat/completions",
    "/openai/v1/chat/completions",
    "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-06-01",
    "/v1/chat/completions/",
])
def test_openai_path_variants(server, client, path):
    response = client.post(f"{server.url}{path}", json={"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "OK"
    if "deployments" in path:  # Azure bodies carry no model: the deployment names it
        assert response.json()["model"] == "my-gpt4o"


def test_error_bodies(server, client):
    response = client.post(f"{server.base_url}/chat/completions", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "not valid JSON" in error["message"]

    response = client.post(f"{server.base_url}/chat/completions", json={"model": "m"})
    assert response.status_code == 400
    assert "messages" in response.json()["error"]["message"]

    response = client.post(f"{server.base_url}/messages", json={"model": "m"})
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"

    response = client.post(f"{server.base_url}/responses", json={"model": "m"})
    assert response.status_code == 400 and "input" in response.json()["error"]["message"]

    response = client.post(f"{server.base_url}/completions", json=chat("x"))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert client.get(f"{server.url}/nope").status_code == 404
    assert client.get(f"{server.base_url}/chat/completions").status_code == 405
    # The connection survives error answers (keep-alive) and the server still works.
    assert client.post(f"{server.base_url}/chat/completions", json=chat("x")).status_code == 200


def test_models_and_health(server, client):
    assert client.get(f"{server.url}/health").status_code == 200
    models = client.get(f"{server.base_url}/models").json()
    assert models["object"] == "list"
    assert [model["id"] for model in models["data"]] == ["loopback-model"]
    assert server.requests == 0  # only the API endpoints are counted


# -- concurrency and latency ---------------------------------------------------------------


def test_64_concurrent_requests_are_not_serialised():
    async def run(base_url: str) -> tuple[list[int], float]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(timeout=10.0, limits=limits, trust_env=False) as client:
            started = time.perf_counter()  # after the client's (slow) SSL context setup
            responses = await asyncio.gather(*(
                client.post(f"{base_url}/chat/completions", json=chat(f"q{i}")) for i in range(64)
            ))
            elapsed = time.perf_counter() - started
        return [response.status_code for response in responses], elapsed

    with LoopbackLLMServer(latency=1.0) as server:
        statuses, elapsed = asyncio.run(run(server.base_url))
        assert statuses == [200] * 64
        # Serialised would take 64 s; the bound is loose for loaded 2-core CI machines.
        assert elapsed < 12.0, f"64 requests at 1 s took {elapsed:.2f} s: serialised?"
        assert server.requests == 64
        # Each answer takes 1 s, so all but the last opened connections overlap even when a
        # loaded machine takes a while to open 64 (serialised: 1 in flight at a time).
        assert server.max_in_flight >= 48
        assert server.in_flight == 0


def test_latency_is_applied_and_mutable(server, client):
    server.latency = 0.3
    started = time.perf_counter()
    assert client.post(f"{server.base_url}/chat/completions", json=chat("x")).status_code == 200
    assert time.perf_counter() - started >= 0.3
    server.latency = 0.0
    started = time.perf_counter()
    client.post(f"{server.base_url}/chat/completions", json=chat("x"))
    assert time.perf_counter() - started < 0.3


def test_keep_alive_reuses_one_connection(server, client):
    for _ in range(3):
        client.post(f"{server.base_url}/chat/completions", json=chat("x"))
    ports = set()
    for _ in range(3):
        response = client.post(f"{server.base_url}/chat/completions", json=chat("x"))
        assert "content-length" in response.headers
        ports.add(response.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(ports) == 1


# -- faults -------------------------------------------------------------------------------


def test_fail_first_then_succeed(client):
    with LoopbackLLMServer(faults=Faults(fail_first=2)) as server:
        statuses = [client.post(f"{server.base_url}/chat/completions", json=chat("x")).status_code
                    for _ in range(3)]
        assert statuses == [500, 500, 200]
        # Assigning new faults restarts their sequence.
        server.faults = Faults(fail_first=1, fail_status=503)
        statuses = [client.post(f"{server.base_url}/chat/completions", json=chat("x")).status_code
                    for _ in range(2)]
        assert statuses == [503, 200]
        assert server.requests == 5


def test_rate_429_sends_retry_after(client):
    with LoopbackLLMServer(faults=Faults(rate_429=1.0, retry_after=2)) as server:
        response = client.post(f"{server.base_url}/chat/completions", json=chat("x"))
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        assert response.json()["error"]["type"] == "rate_limit_error"
        server.faults = Faults(rate_429=1.0, retry_after=0.1)
        assert client.post(f"{server.base_url}/messages", json=chat("x")).headers["retry-after"] == "0.1"
        server.faults = Faults(rate_429=1.0)
        assert client.post(f"{server.base_url}/chat/completions", json=chat("x")).headers["retry-after"] == "0"


def test_rate_500(client):
    with LoopbackLLMServer(faults=Faults(rate_500=1.0)) as server:
        response = client.post(f"{server.base_url}/chat/completions", json=chat("x"))
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"


def test_rate_drop_is_a_transport_error(client):
    with LoopbackLLMServer(faults=Faults(rate_drop=1.0)) as server:
        with pytest.raises(httpx.TransportError):
            client.post(f"{server.base_url}/chat/completions", json=chat("x"))
        server.faults = None
        assert client.post(f"{server.base_url}/chat/completions", json=chat("x")).status_code == 200
        assert server.requests == 2


def test_rate_timeout_trips_the_client_timeout():
    with LoopbackLLMServer(faults=Faults(rate_timeout=1.0, timeout_delay=30)) as server:
        with httpx.Client(timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                client.post(f"{server.base_url}/chat/completions", json=chat("x"))
        started = time.perf_counter()
    # stop() does not wait out the stalled handler (30 s); the bound is loose for loaded CI machines
    assert time.perf_counter() - started < 5.0


def test_same_seed_gives_same_fault_sequence(client):
    def sequence(seed: int) -> list[int]:
        faults = Faults(rate_429=0.3, rate_500=0.3, seed=seed)
        with LoopbackLLMServer(faults=faults) as server:
            return [client.post(f"{server.base_url}/chat/completions", json=chat("x")).status_code
                    for _ in range(30)]

    first, second = sequence(7), sequence(7)
    assert first == second
    assert {200, 429, 500} <= set(first)
    assert sequence(8) != first


def test_faults_are_validated():
    with pytest.raises(ValueError, match="rate_429"):
        Faults(rate_429=1.5)
    with pytest.raises(ValueError, match="fail_status"):
        Faults(fail_status=200)


# -- counters and lifecycle ----------------------------------------------------------------


def test_counters_received_and_reset(server, client):
    for i in range(3):
        client.post(f"{server.base_url}/chat/completions", json=chat(f"q{i}"),
                    headers={"Authorization": "Bearer sk-test"})
    assert server.requests == 3
    deadline = time.monotonic() + 5  # the handler leaves its finally block just after replying
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.in_flight == 0
    assert server.max_in_flight == 1
    assert [body["messages"][0]["content"] for body in server.received] == ["q0", "q1", "q2"]
    assert all(headers["authorization"] == "Bearer sk-test" for headers in server.received_headers)
    server.reset()
    assert (server.requests, server.max_in_flight, server.received, server.received_headers) == (0, 0, [], [])
    client.post(f"{server.base_url}/chat/completions", json=chat("again"))
    assert server.requests == 1 and len(server.received) == 1


def test_reset_restarts_fail_first(client):
    with LoopbackLLMServer(faults=Faults(fail_first=1)) as server:
        url = f"{server.base_url}/chat/completions"
        assert [client.post(url, json=chat("x")).status_code for _ in range(2)] == [500, 200]
        server.reset()
        assert [client.post(url, json=chat("x")).status_code for _ in range(2)] == [500, 200]


def test_stop_is_prompt_with_an_idle_keep_alive_connection(client):
    server = LoopbackLLMServer().start()
    assert client.post(f"{server.base_url}/chat/completions", json=chat("x")).status_code == 200
    # The pooled connection now sits idle in a handler thread blocked on recv.
    started = time.perf_counter()
    server.stop()
    assert time.perf_counter() - started < 5.0  # not blocked on the idle connection's recv
    assert not server.running
    with pytest.raises(httpx.TransportError):
        client.post(f"{server.base_url}/chat/completions", json=chat("x"))
    server.stop()  # idempotent


def test_stop_is_prompt_while_a_request_sleeps():
    server = LoopbackLLMServer(latency=30).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{server.base_url}/chat/completions", json=chat("x"), timeout=10)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while server.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    server.stop()
    assert time.perf_counter() - started < 5.0  # the handler sleeps 30 s; stop() must not wait
    thread.join(5)
    assert errors and isinstance(errors[0], httpx.TransportError)


def test_base_url_needs_a_started_server():
    server = LoopbackLLMServer()
    with pytest.raises(RuntimeError, match="not started"):
        server.base_url
    with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.url == f"http://127.0.0.1:{server.port}"


# -- command line --------------------------------------------------------------------------


def test_command_line(tmp_path):
    table = tmp_path / "answers.json"
    table.write_text(json.dumps({"ping": "pong"}), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_llmeval.testing.server", "--port", "0", "--latency-ms", "10",
         "--table", str(table), "--default-answer", "DEFAULT", "--fail-first", "1",
         "--rate-429", "0", "--retry-after", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("LOOPBACK_BASE_URL=http://127.0.0.1:"), line
        base_url = line.split("=", 1)[1]
        assert base_url.endswith("/v1")
        with httpx.Client(timeout=5) as client:
            assert client.post(f"{base_url}/chat/completions", json=chat("ping")).status_code == 500
            answers = [client.post(f"{base_url}/chat/completions", json=chat(text)).json()
                       ["choices"][0]["message"]["content"] for text in ("ping", "other")]
        assert answers == ["pong", "DEFAULT"]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert stderr == ""  # no per-request logging, no runpy double-import warning


def test_command_line_rejects_a_bad_table(tmp_path):
    table = tmp_path / "answers.json"
    table.write_text("[1, 2]", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest_llmeval.testing.server", "--port", "0", "--table", str(table)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "JSON object" in result.stderr
