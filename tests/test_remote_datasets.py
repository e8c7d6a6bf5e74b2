"""Golden datasets from object storage and URLs (fsspec): a real S3-compatible server on
loopback (moto's server mode), a loopback HTTP server and file:// URLs. No test touches
the internet."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest

pytest.importorskip("fsspec")
pytest.importorskip("s3fs")

from pytest_llmeval.core import datasets  # noqa: E402
from pytest_llmeval.core.datasets import is_remote, load_dataset, load_remote_dataset  # noqa: E402
from pytest_llmeval.errors import DatasetError  # noqa: E402

ROWS = [{"id": f"q{i}", "inputs": {"q": f"question {i}"}, "expected": "yes" if i % 4 else "no"} for i in range(40)]
URI = "s3://evals/golden-v3.jsonl"


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 at a free port, for the whole session."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """An S3 filesystem against the loopback server, with the bucket ``evals``; the
    environment points every S3 client of the test (and of in-process pytest runs) there."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL_S3", s3_server)):
        monkeypatch.setenv(name, value)
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3_server, key="testing", secret="testing", skip_instance_cache=True)
    if not fs.exists("evals"):
        fs.mkdir("evals")
    return fs


def _put(fs, uri, rows):
    with fs.open(uri, "wb") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))
    fs.invalidate_cache()


def test_only_urls_are_remote():
    assert is_remote("s3://b/k.jsonl") and is_remote("https://x/y.csv") and is_remote("file:///tmp/a.jsonl")
    assert not is_remote("evals/data.jsonl") and not is_remote("C:\\data.jsonl") and not is_remote(None)


def test_a_remote_dataset_loads_like_a_local_one_and_is_cached_by_fingerprint(s3, tmp_path, monkeypatch):
    _put(s3, URI, ROWS)
    local = tmp_path / "local.jsonl"
    local.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    remote = load_remote_dataset(URI, tmp_path / "cache")
    assert remote.name == URI
    assert remote.fingerprint == load_dataset(local).fingerprint
    assert [c.id for c in remote.cases] == [r["id"] for r in ROWS]
    assert (tmp_path / "cache" / (remote.fingerprint.removeprefix("sha256:") + ".jsonl")).exists()

    def no_download(uri):
        raise AssertionError("downloaded although the cached copy is current")

    monkeypatch.setattr(datasets, "_fetch", no_download)
    assert load_remote_dataset(URI, tmp_path / "cache").fingerprint == remote.fingerprint  # same ETag: the cached copy
    monkeypatch.undo()

    _put(s3, URI, ROWS[:-1])  # a new version: downloaded again
    assert len(load_remote_dataset(URI, tmp_path / "cache").cases) == len(ROWS) - 1


def test_a_tampered_cache_copy_is_not_used(s3, tmp_path):
    _put(s3, URI, ROWS)
    first = load_remote_dataset(URI, tmp_path / "cache")
    copy = tmp_path / "cache" / (first.fingerprint.removeprefix("sha256:") + ".jsonl")
    copy.write_text(json.dumps({"id": "evil", "inputs": {}}) + "\n")
    assert [c.id for c in load_remote_dataset(URI, tmp_path / "cache").cases] == [r["id"] for r in ROWS]


@pytest.mark.parametrize("uri, problem", [
    ("s3://evals/missing.jsonl", "s3://evals/missing.jsonl: remote dataset not found"),
    ("s3://evals/golden.txt", "unsupported dataset format '.txt'"),
])
def test_remote_errors_name_the_uri(s3, tmp_path, uri, problem):
    with pytest.raises(DatasetError, match=problem.replace(".", r"\.").replace("(", r"\(")):
        load_remote_dataset(uri, tmp_path)


def test_a_bad_row_in_a_remote_dataset_names_the_uri_and_line(s3, tmp_path):
    _put(s3, "s3://evals/bad.jsonl", [ROWS[0], {"id": "x"}])
    with pytest.raises(DatasetError, match=r"s3://evals/bad\.jsonl:2: field 'inputs': missing"):
        load_remote_dataset("s3://evals/bad.jsonl", tmp_path)


def test_https_and_file_urls(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "golden.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/golden.jsonl"
        assert len(load_remote_dataset(url, tmp_path / "cache").cases) == len(ROWS)
    finally:
        server.shutdown()
    file_url = (folder / "golden.jsonl").as_uri()
    assert load_remote_dataset(file_url, tmp_path / "cache").fingerprint == load_dataset(folder / "golden.jsonl").fingerprint


PROJECT = """
import pytest

def answer(q):
    return "yes"

@pytest.mark.llm_eval(dataset="{uri}", target=answer, scorers=["exact_match"])
def test_support(llm_case, llm_eval):
    pass
"""


@pytest.mark.parametrize("dist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_an_s3_dataset_runs_end_to_end_and_a_changed_row_is_reported_against_the_baseline(s3, pytester, capsys, dist):
    from pytest_llmeval.check.cli import main as check_main

    uri = f"s3://evals/e2e-{len(dist)}.jsonl"
    _put(s3, uri, ROWS)
    pytester.makepyfile(test_eval=PROJECT.format(uri=uri))
    report = pytester.path / "report.json"
    blessed = pytester.runpytest("--llm-eval", "--llm-eval-update", f"--llm-eval-report={report}", *dist)
    assert blessed.ret == 0
    doc = json.loads(report.read_text())
    (suite,) = doc["suites"]
    assert suite["dataset"] == uri and suite["cases_run"] == 40
    baseline = json.loads((pytester.path / ".llm-eval" / "test_eval.py" / "test_support.json").read_text())
    assert baseline["dataset"] == uri and baseline["fingerprint"] == suite["fingerprint"]

    config = pytester.path / "llmops-config.yaml"
    config.write_text(f"eval_gates:\n  golden_dataset: {uri}\n  thresholds: {{exact_match: 0.7}}\n"
                      "routing:\n  primary: {provider: openai, model: gpt-4o, weight: 1.0}\n"
                      "  fallback: {provider: anthropic, model: claude-haiku-3.5}\n")
    capsys.readouterr()
    assert check_main([str(config), "--report", str(report), "--format", "json"]) == 1  # the suite called no model
    findings = {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert "LEC706" not in findings and "LEC707" not in findings and "LEC717" not in findings

    changed = [dict(r) for r in ROWS]
    changed[5]["expected"] = "no"  # one row changed in the bucket
    _put(s3, uri, changed)
    result = pytester.runpytest("--llm-eval", f"--llm-eval-report={report}", *dist)
    result.stdout.fnmatch_lines(["*dataset changed since the baseline: 0 row(s) added, 1 changed, 0 removed*"])
    suite = json.loads(report.read_text())["suites"][0]
    assert suite["baseline"]["fingerprint_changed"] is True and suite["baseline"]["changed_cases"] == ["q5"]
    assert suite["fingerprint"] != baseline["fingerprint"]

    # the checker compares the config's golden dataset, read from the bucket now, with the report
    _put(s3, uri, ROWS)
    capsys.readouterr()
    assert check_main([str(config), "--report", str(report), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)["findings"]
    assert any(f["code"] == "LEC707" and f"the object at {uri} now" in f["message"] for f in found)


def test_a_gs_dataset_without_the_gcs_extra_names_the_extra(tmp_path):
    """gs:// is not tested against a server (none runs offline); without gcsfs (the dev extra
    does not install it) the URI fails before any network use, naming the extra."""
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed: opening gs:// would try to reach Google")
    with pytest.raises(DatasetError, match=r"gs://evals/golden\.jsonl: cannot open gs:// .*install pytest-llmeval\[gcs\]"):
        load_remote_dataset("gs://evals/golden.jsonl", tmp_path)
