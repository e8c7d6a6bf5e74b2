"""Every example output in README.md and docs/ comes from a real run.

A fenced block after ``<!-- file: PATH -->`` shows the repository file PATH verbatim. One
placed right after a marker line ``<!-- example: NAME -->`` shows what
the recipe ``NAME`` below prints: each recipe builds a small project (or copies the
example project) in a temporary folder, runs the real command in a subprocess and picks
the lines the doc shows. ``tests/test_docs_examples.py`` compares every marked block with
a fresh run (after :func:`normalise` hides timings and temporary paths), so a change
that alters an example fails until the doc is regenerated:

    python tests/docs_examples.py --write            # rewrite every marked block
    python tests/docs_examples.py NAME [NAME ...]    # print some recipes' output

Fences without a language tag hold output and must carry a marker; inputs name their
language (python, bash, yaml, json, toml, ini, text).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"^\s*<!-- (example|file): (\S+) -->$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
# Plugins a developer may have installed that would change what pytest prints, and
# hypothesis' (it prints nothing here, but importing it costs each run's process 1.5-3 s).
SHOWN_ROOT = "/tmp/docs"  # what the docs show for the throwaway projects' folder
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:langsmith_plugin", "-p", "no:rerunfailures",
                 "-p", "no:pytest_cov", "-p", "no:asyncio",  # pytest-asyncio warns in projects without its ini key
                 "-p", "no:hypothesispytest")


@dataclass(frozen=True)
class Block:
    """One marked block: where it is, its recipe and the text it shows."""

    path: Path
    line: int  # 1-based line of the opening fence
    name: str  # the recipe (kind "example") or the repository file it shows (kind "file")
    text: str  # without the fence's indentation
    indent: str = ""
    kind: str = "example"

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def find_blocks(path: Path) -> tuple[list[Block], list[int]]:
    """The marked blocks of a Markdown file, and the lines of unmarked untagged fences."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, unmarked = [], []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent = fence.group(1)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```"))
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(previous)
        if marker:
            body = [line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:end]]
            blocks.append(Block(path, i + 1, marker.group(2), "\n".join(body), indent, marker.group(1)))
        elif not fence.group(2):
            unmarked.append(i + 1)
        i = end + 1
    return blocks, unmarked


def normalise(text: str) -> str:
    """Hide what changes from run to run: durations, latencies, temporary paths, and the
    width of pytest's ``===`` rules (a longer duration shortens them)."""
    text = re.sub(r"in \d+\.\d+s( \(\d+:\d\d:\d\d\))?", "in N.NNs", text)
    text = re.sub(r"([=_!])\1{3,}", r"\1\1\1", text)
    text = re.sub(r"\b\d+(\.\d+)? ms\b", "N ms", text)
    text = re.sub(r"\((p50) \d+, (p99) \d+\)", r"(\1 N, \2 N)", text)
    text = re.sub(r'time="[\d.]+"', 'time="N"', text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", "<time>", text)
    text = re.sub(r"/tmp/[^\s:'\"]+/(?=[\w.-])", "<tmp>/", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


# --------------------------------------------------------------------------- running


class Runs:
    """Runs commands in throwaway projects; one run's output may feed several recipes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[tuple, str] = {}

    def project(self, name: str, files: dict[str, str]) -> Path:
        folder = self.root / name
        if not folder.exists():
            for rel, text in files.items():
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return folder

    def example_project(self, name: str = "example", edit: Callable[[Path], None] | None = None) -> Path:
        folder = self.root / name
        if not folder.exists():
            shutil.copytree(REPO / "example_project", folder, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
            if edit:
                edit(folder)
        return folder

    def run(self, folder: Path, *args: str, pytest: bool = True) -> str:
        """stdout+stderr of ``python -m pytest ARGS`` (or of the console script ``args[0]``)."""
        key = (str(folder), pytest, args)
        if key not in self._cache:
            env = {**os.environ, "RAGAS_DO_NOT_TRACK": "true", "COLUMNS": "80", "PYTHONHASHSEED": "0"}
            env.pop("LLM_EVAL_BASE_URL", None)
            env.pop("PYTEST_ADDOPTS", None)
            # The docs show what a developer's terminal prints. On CI pytest writes the whole
            # multi-line failure message into the short summary too (CI, BUILD_NUMBER), and
            # the plugin writes step summaries: a CI machine must print the same as a laptop.
            for name in ("CI", "BUILD_NUMBER", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITLAB_CI"):
                env.pop(name, None)
            # The console scripts, as the docs show them (``pytest: error: ...``).
            command = [str(Path(sys.executable).with_name("pytest")), *QUIET_PLUGINS, *args] if pytest else \
                [str(Path(sys.executable).with_name(args[0])), *args[1:]]
            done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
            self._cache[key] = (done.stdout + done.stderr).replace(str(self.root), SHOWN_ROOT)
        return self._cache[key]


def section(out: str, start: str, end: str | None = None, *, last: bool = False) -> str:
    """Lines from the first match of regex ``start`` to the first match of ``end`` after it
    (inclusive; to the end when ``end`` is None). ``last``: start at the last match."""
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if re.search(start, line)]
    if not starts:
        raise LookupError(f"no line matches {start!r} in:\n{out}")
    first = starts[-1] if last else starts[0]
    stop = len(lines) - 1
    if end is not None:
        stop = next((j for j in range(first, len(lines)) if re.search(end, lines[j])), None)
        if stop is None:
            raise LookupError(f"no line matches {end!r} after {start!r} in:\n{out}")
    return "\n".join(lines[first:stop + 1])


def grep(out: str, *patterns: str) -> str:
    """The lines matching any of the regexes, in output order (each pattern must match)."""
    lines = out.splitlines()
    for pattern in patterns:
        if not any(re.search(pattern, line) for line in lines):
            raise LookupError(f"no line matches {pattern!r} in:\n{out}")
    return "\n".join(line for line in lines if any(re.search(p, line) for p in patterns))


# --------------------------------------------------------------------------- projects


def binary_suite(runs: Runs, name: str, n: int, baseline_pass: int, current_pass: int, *, marker: str = "",
                 repeats_flip: bool = False) -> Path:
    """A suite of ``n`` cases q000.. scored by ``contains``; the app answers the first
    ``baseline_pass`` right when APP=baseline and the first ``current_pass`` otherwise."""
    rows = "\n".join(json.dumps({"id": f"q{i:03d}", "inputs": {"i": i}, "expected": "yes"}) for i in range(n))
    return runs.project(name, {
        "data.jsonl": rows + "\n",
        "pyproject.toml": "[tool.pytest.ini_options]\n",
        "test_eval.py": f"""
            import os
            import pytest

            def app(i):
                good = {baseline_pass} if os.environ.get("APP") == "baseline" else {current_pass}
                return "yes" if i < good else "no"

            @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"]{marker})
            def test_support(llm_case, llm_eval):
                pass
            """,
    })


def bless(runs: Runs, folder: Path, *args: str) -> None:
    """Write the folder's baseline from the APP=baseline variant of its app."""
    env_before = os.environ.get("APP")
    os.environ["APP"] = "baseline"
    try:
        runs.run(folder, "--llm-eval", "--llm-eval-update", "-q", *args)
    finally:
        if env_before is None:
            os.environ.pop("APP", None)
        else:
            os.environ["APP"] = env_before


# --------------------------------------------------------------------------- recipes

Recipe = Callable[[Runs], str]
RECIPES: dict[str, Recipe] = {}


def recipe(name: str) -> Callable[[Recipe], Recipe]:
    def register(fn: Recipe) -> Recipe:
        RECIPES[name] = fn
        return fn

    return register


# The example project's recipes run its main suite (test_support_eval.py) by name: the
# ragas suite runs only where the extra is installed, and the docs must not depend on that.
MAIN_SUITE = "test_support_eval.py"


def _example_run(runs: Runs) -> str:
    return runs.run(runs.example_project(), "--llm-eval", MAIN_SUITE)


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the runs inside the block (their subprocesses inherit them)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@recipe("readme-summary")
def _readme_summary(runs: Runs) -> str:
    out = _example_run(runs)
    return "$ pytest --llm-eval test_support_eval.py\n" + section(out, r"::test_support_answers  dataset", r"^  usage: ") + \
        "\n...\n" + grep(out, r"^loopback model: ", r"^=+ \d+ passed")


@recipe("readme-live-usage")
def _readme_live_usage(runs: Runs) -> str:
    out = runs.run(runs.example_project("example-live"), "--llm-eval", "--llm-eval-cache=off", MAIN_SUITE)
    return "$ pytest --llm-eval --llm-eval-cache=off test_support_eval.py\n...\n" + grep(out, r"^  usage: ", r"^loopback model: ")


@recipe("readme-planted-regression")
def _readme_planted_regression(runs: Runs) -> str:
    with _environ(SUPPORT_BOT_PROMPT="support_answer_concise"):
        out = runs.run(runs.example_project("example-concise"), "--llm-eval", MAIN_SUITE)
    table = section(out, r"::test_support_answers  dataset", r"^  metric ")
    shown = grep(out, r"^  contains ", r"^  note: prompt ")
    worst = "\n".join(section(out, r"^  worst cases for contains", r"^loopback model: ").splitlines()[:-1])
    return ("$ SUPPORT_BOT_PROMPT=support_answer_concise pytest --llm-eval test_support_eval.py\n" + table + "\n" + shown
            + "\n" + worst + "\n...\n" + grep(out, r"^contains regressed", r"^contains vs baseline", r"^FAILED ", r"^=+ \d+ failed"))


@recipe("usage-first-run")
def _usage_first_run(runs: Runs) -> str:
    return "$ cd example_project && pytest --llm-eval test_support_eval.py\n" + section(_example_run(runs), r"^collected ")


@recipe("gate-mde-note")
def _gate_mde_note(runs: Runs) -> str:
    out = runs.run(runs.example_project(), "--llm-eval", "test_support_judge.py")
    return grep(out, r"^  note: judge:correctness: with n=63")


@recipe("usage-skipped-without-flag")
def _usage_skipped(runs: Runs) -> str:
    out = runs.run(runs.example_project(), "-rs", MAIN_SUITE)
    return "$ pytest -rs test_support_eval.py\n" + grep(out, r"^test_support_eval.py s", r"^SKIPPED")


@recipe("writing-evals-ab")
def _writing_evals_ab(runs: Runs) -> str:
    out = runs.run(runs.example_project(), "--llm-eval", "test_support_variants.py")
    return "$ pytest --llm-eval test_support_variants.py\n" + _without_latency(
        section(out, r"::test_support_prompt_ab  variants", r"^  concise vs control: "))


# docs/getting-started.md: a new project whose app calls the openai SDK, its first eval,
# baseline and gated run. The page shows these files; the recipe checks it shows them as
# they are here, and runs them with the SDK pointed at a loopback server.
GETTING_STARTED = {
    "app.py": """\
from openai import OpenAI

client = OpenAI()  # OPENAI_API_KEY, OPENAI_BASE_URL from the environment


def answer(question: str) -> str:
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0,
        messages=[{"role": "system", "content": "You answer questions about our shop in one sentence."},
                  {"role": "user", "content": question}],
    )
    return response.choices[0].message.content
""",
    "evals/support.jsonl": """\
{"id": "refund-time", "inputs": {"question": "How long does a refund take?"}, "expected": "14 days"}
{"id": "refund-window", "inputs": {"question": "Until when can I return an item?"}, "expected": "30 days"}
{"id": "shipping-time", "inputs": {"question": "How long does shipping take?"}, "expected": "3-5 business days"}
{"id": "free-shipping", "inputs": {"question": "Is shipping free?"}, "expected": "$50"}
{"id": "out-of-scope", "inputs": {"question": "Write me a poem."}, "expected": "can only help"}
""",
    "test_support.py": """\
import pytest

from app import answer


@pytest.mark.llm_eval(dataset="evals/support.jsonl", target=answer,
                      scorers=["contains"], thresholds={"contains": 0.8})
def test_support(llm_case, llm_eval):
    pass
""",
    "pyproject.toml": """\
[tool.pytest.ini_options]
llm_eval_cache = "readwrite"
""",
}
_SHOP = {"refund": "Refunds arrive within 14 days.", "return": "You can return an item within 30 days of delivery.",
         "shipping take": "Shipping takes 3-5 business days.", "free": "Orders over $50 ship for free."}


def _shop_model(request: dict) -> str:
    question = request["messages"][-1]["content"].lower()
    return next((text for key, text in _SHOP.items() if key in question), "Sorry, I can only help with our shop.")


def _getting_started(runs: Runs, *args: str) -> str:
    from pytest_llmeval.testing import LoopbackLLMServer

    page = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
    missing = [name for name, text in GETTING_STARTED.items() if text not in page]
    if missing:
        raise LookupError(f"docs/getting-started.md does not show {missing} as tests/docs_examples.py runs them")
    folder = runs.project("getting-started", GETTING_STARTED)
    with LoopbackLLMServer(_shop_model) as server, _environ(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-getting-started"):
        return runs.run(folder, *args)


@recipe("getting-started-first-run")
def _getting_started_first_run(runs: Runs) -> str:
    return "$ pytest --llm-eval\n" + section(_getting_started(runs, "--llm-eval"), r"^test_support.py::test_support  dataset")


@recipe("getting-started-bless")
def _getting_started_bless(runs: Runs) -> str:
    _getting_started(runs, "--llm-eval")  # the first run, as on the page
    return "$ pytest --llm-eval --llm-eval-update\n" + grep(_getting_started(runs, "--llm-eval", "--llm-eval-update"),
                                                             r"^  baseline written: ")


@recipe("getting-started-gated")
def _getting_started_gated(runs: Runs) -> str:
    _getting_started_bless(runs)
    out = _getting_started(runs, "--llm-eval", "--llm-eval-cache=strict")
    return "$ pytest --llm-eval --llm-eval-cache=strict\n" + section(out, r"^test_support.py::test_support  dataset")


@recipe("usage-scorer-errors")
def _usage_scorer_errors(runs: Runs) -> str:
    folder = runs.project("scorer-errors", {
        "data.jsonl": '{"id": "a", "inputs": {"q": "x"}, "expected": "x"}\n',
        "test_unknown.py": """
            import pytest

            @pytest.mark.llm_eval(dataset="data.jsonl", scorers=["contain"])
            def test_unknown(llm_case, llm_eval):
                llm_eval.score("x")
            """,
        "test_options.py": """
            import pytest

            @pytest.mark.llm_eval(dataset="data.jsonl", scorers=[("exact_match", {"casesensitive": False})])
            def test_options(llm_case, llm_eval):
                llm_eval.score("x")
            """,
        "test_twice.py": """
            import pytest

            @pytest.mark.llm_eval(dataset="data.jsonl", scorers=["regex", ("regex", {"pattern": "x"})])
            def test_twice(llm_case, llm_eval):
                llm_eval.score("x")
            """,
    })
    out = runs.run(folder, "--llm-eval", "-q")
    return "\n".join(line.split(": ", 1)[1] if line.startswith("E   ") else line for line in
                     grep(out, r"unknown scorer 'contain'", r"scorer 'exact_match': bad options",
                          r"metric 'regex' is produced twice").splitlines()
                     if not line.startswith("ERROR "))


@recipe("usage-dataset-error")
def _usage_dataset_error(runs: Runs) -> str:
    folder = runs.project("dataset-error", {
        "d.jsonl": '{"id": "a", "inputs": {"q": "x"}}\n{"id": "b", "input": {"q": "y"}}\n',
        "test_d.py": """
            import pytest

            @pytest.mark.llm_eval(dataset="d.jsonl", scorers=["contains"])
            def test_d(llm_case, llm_eval):
                llm_eval.score("x")
            """,
    })
    out = runs.run(folder, "--llm-eval")
    return grep(out, r"^d\.jsonl:2: ", r"Interrupted: 1 error during collection")


@recipe("usage-one-message")
def _usage_one_message(runs: Runs) -> str:
    folder = runs.project("one-message", {
        "data.jsonl": "".join(json.dumps({"id": f"q{n}", "inputs": {"question": f"q{n}"}, "expected": "yes"}) + "\n" for n in range(3)),
        "test_eval.py": """
            import pytest

            def answer(question):
                if question == "q1":
                    raise RuntimeError("upstream said no")
                return "yes"

            @pytest.mark.llm_eval(dataset="data.jsonl", target=answer, scorers=["contains"])
            def test_eval(llm_case, llm_eval):
                pass
            """,
    })
    out = runs.run(folder, "--llm-eval", "-rN")
    return section(out, r"ERROR at setup of test_eval\[q1\]", r"raised at")


@recipe("usage-incomplete")
def _usage_incomplete(runs: Runs) -> str:
    folder = runs.project("incomplete", {
        "d.jsonl": "".join(json.dumps({"id": c, "inputs": {"q": c}, "expected": c}) + "\n" for c in "abc"),
        "test_x.py": """
            import pytest

            @pytest.mark.llm_eval(dataset="d.jsonl", scorers=["contains"])
            def test_x(llm_case, llm_eval):
                llm_eval.score(llm_case.expected)
                assert llm_case.id != "a"
            """,
    })
    out = runs.run(folder, "--llm-eval", "-x")
    return section(out, r"llm-eval: run incomplete", r"no verdict is final")


@recipe("usage-yaml-surprise")
def _usage_yaml_surprise(runs: Runs) -> str:
    folder = runs.project("yaml-surprise", {
        "d.yaml": "- id: a\n  inputs: {q: x}\n  expected: yes\n- id: b\n  inputs:\n    answer: yes\n",
        "test_d.py": """
            import pytest

            @pytest.mark.llm_eval(dataset="d.yaml", scorers=["contains"])
            def test_d(llm_case, llm_eval):
                llm_eval.score("yes")
            """,
    })
    return grep(runs.run(folder, "--llm-eval"), r"^d\.yaml:6: ")


@recipe("gate-threshold-fail")
def _gate_threshold_fail(runs: Runs) -> str:
    folder = binary_suite(runs, "threshold", 200, 170, 170, marker=', thresholds={"contains": 0.9}')
    return grep(runs.run(folder, "--llm-eval"), r"^contains 0\.850 < 0\.9")


@recipe("gate-threshold-not-enforced")
def _gate_threshold_ignored(runs: Runs) -> str:
    folder = binary_suite(runs, "threshold", 200, 170, 170, marker=', thresholds={"contains": 0.9}')
    return grep(runs.run(folder, "--llm-eval", "--llm-eval-ignore-thresholds", "-rA"), r"contains 0\.850 < 0\.9 .*not enforced")


@recipe("gate-regression-300")
def _gate_regression(runs: Runs) -> str:
    folder = binary_suite(runs, "regression", 300, 270, 210)
    bless(runs, folder)
    return grep(runs.run(folder, "--llm-eval"), r"^contains regressed", r"^contains vs baseline")


@recipe("gate-auto-rounds")
def _gate_auto_rounds(runs: Runs) -> str:
    # 20 cases, two of which now fail for good: a 10-point drop 20 cases cannot make significant.
    folder = binary_suite(runs, "auto-rounds", 20, 20, 18, marker=', repeats="auto"')
    bless(runs, folder)  # the default design: 5 looks, half rounds
    return grep(runs.run(folder, "--llm-eval"), r"::test_support  dataset", r"^  contains ", r"^  note: repeats auto:")

@recipe("report-worst-cases")
def _report_worst_cases(runs: Runs) -> str:
    folder = binary_suite(runs, "worst", 40, 40, 32)
    bless(runs, folder)
    return section(runs.run(folder, "--llm-eval"), r"^  worst cases for contains", r"^  review:")


@recipe("report-v-scores")
def _report_v_scores(runs: Runs) -> str:
    folder = binary_suite(runs, "worst", 40, 40, 32)
    bless(runs, folder)
    return grep(runs.run(folder, "--llm-eval", "-v"), r"test_support\[q03[12]\] PASSED")


@recipe("gate-holm")
def _gate_holm(runs: Runs) -> str:
    def break_refunds(folder: Path) -> None:
        model = folder / "fake_model.py"
        text = model.read_text(encoding="utf-8")
        model.write_text(text + textwrap.dedent('''

            _original_reply = reply


            def reply(request):
                """The refund answer lost its number of days (a planted regression)."""
                answer = _original_reply(request)
                return answer.replace("14 days", "two weeks") if isinstance(answer, str) else answer
            '''), encoding="utf-8")

    folder = runs.example_project("example-refunds", edit=break_refunds)
    # The recording holds the unbroken answers: the loopback model answers live instead.
    return grep(runs.run(folder, "--llm-eval", "--llm-eval-cache=off", MAIN_SUITE), r"^contains regressed", r"^contains vs baseline")


@recipe("baseline-unchanged")
def _baseline_unchanged(runs: Runs) -> str:
    return grep(runs.run(runs.example_project("example-update"), "--llm-eval-update", MAIN_SUITE), r"^  baseline unchanged: ")


def _fresh_300(runs: Runs) -> Path:
    folder = binary_suite(runs, "bless-300", 300, 270, 270)
    runs.run(folder, "--llm-eval-update")
    return folder


@recipe("baseline-written")
def _baseline_written(runs: Runs) -> str:
    return grep(runs.run(_fresh_300(runs), "--llm-eval-update"), r"^  baseline written: ")


@recipe("baseline-written-narrowed")
def _baseline_written_narrowed(runs: Runs) -> str:
    folder = binary_suite(runs, "bless-300-narrowed", 300, 270, 0)
    bless(runs, folder)
    out = runs.run(folder, "--llm-eval-update", "-k", "q000 or q001")
    return grep(out, r"baseline written: ").strip()


@recipe("baseline-missing")
def _baseline_missing(runs: Runs) -> str:
    return grep(runs.run(binary_suite(runs, "no-baseline", 300, 270, 270), "--llm-eval"), r"^  note: no baseline at ")


@recipe("baseline-lost")
def _baseline_lost(runs: Runs) -> str:
    folder = binary_suite(runs, "lost-baseline", 40, 36, 36)
    bless(runs, folder)
    runs.run(folder, "--llm-eval", "--llm-eval-report=r.json")
    next(folder.glob(".llm-eval/**/*.json")).unlink()
    return grep(runs.run(folder, "--llm-eval", "--llm-eval-report=r.json", "-p", "no:cacheprovider"),
                r"^llm-eval: warning: .*baseline", r"^  note: BASELINE MISSING")


@recipe("baseline-cases-changed")
def _baseline_cases_changed(runs: Runs) -> str:
    folder = binary_suite(runs, "cases-changed", 300, 270, 270)
    runs.run(folder, "--llm-eval-update")
    data = folder / "data.jsonl"
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()][5:]
    rows[0]["expected"] = "yes, within 14 days"
    rows.append({"id": "new-1", "inputs": {"i": 0}, "expected": "yes"})
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return grep(runs.run(folder, "--llm-eval"), r"^  note: dataset changed", r"^  note: \d+ case\(s\) (new|in the baseline|changed)")


@recipe("baseline-corrupt")
def _baseline_corrupt(runs: Runs) -> str:
    folder = binary_suite(runs, "corrupt", 20, 18, 18)
    runs.run(folder, "--llm-eval-update")
    stored = folder / ".llm-eval" / "test_eval.py" / "test_support.json"
    lines = stored.read_text(encoding="utf-8").splitlines()
    lines[8] = lines[8].replace('"', "", 1)
    stored.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return section(runs.run(folder, "--llm-eval"), r"_ test_support::llm_eval_gate\[baseline\] _", r"corrupt baseline")


@recipe("configuration-ini-errors")
def _configuration_ini_errors(runs: Runs) -> str:
    folder = runs.project("ini-errors", {"test_nothing.py": "def test_nothing():\n    pass\n"})
    calls = [("-o", "llm_eval_max_drop=1.5"), ("-o", "llm_eval_alpha=x"), ("--llm-eval-alpha", "2"),
             ("--llm-eval-shard", "3/2")]
    return "\n".join(grep(runs.run(folder, *args), r"^(ERROR: ini |pytest: error: )") for args in calls)


@recipe("configuration-price-errors")
def _configuration_price_errors(runs: Runs) -> str:
    folder = runs.project("price-errors", {"test_nothing.py": "def test_nothing():\n    pass\n"})
    calls = [("-o", "llm_eval_prices=gpt-x = 1"), ("-o", "llm_eval_price_file=nope.yaml")]
    return "\n".join(grep(runs.run(folder, "--llm-eval", *args), r"^ERROR: ") for args in calls)


@recipe("configuration-token-budget")
def _configuration_token_budget(runs: Runs) -> str:
    def longer_prompt(folder: Path) -> None:
        prompt = folder / "prompts" / "support_answer.yaml"
        text = prompt.read_text(encoding="utf-8")
        added = ("  You are a patient, friendly and precise support agent for an online electronics store. Greet the\n"
                 "  customer by name when you know it, thank them for their patience, restate their question in your own\n"
                 "  words before you answer it, and close by asking whether there is anything else you can help with today.\n")
        prompt.write_text(text.replace("template: |-\n", "template: |-\n" + added, 1), encoding="utf-8")

    folder = runs.example_project("example-long-prompt", edit=longer_prompt)
    # A new prompt is a new request: the loopback model answers live (the recording has the old one).
    return section(runs.run(folder, "--llm-eval", "--llm-eval-cache=off", MAIN_SUITE), r"_ test_support_answers::llm_eval_gate\[input_tokens_increase\] _",
                   r"exceeds allowed increase")


_EVIL_PROMPTS = {
    "evil.yaml": "template: 'Hello {inputs.__class__}'\n",
    "index.yaml": "template: 'Hello {x[0]}'\n",
    "positional.txt": "Hello {}\n",
    "nested.yaml": "template: 'Hello {a:{b}}'\n",
}


@recipe("prompts-refused-templates")
def _prompts_refused(runs: Runs) -> str:
    lines = []
    for name, text in _EVIL_PROMPTS.items():
        folder = runs.project(f"evil-{name}", {f"prompts/{name}": text})
        out = runs.run(folder, "llm-eval", "prompts", pytest=False)
        lines.append(grep(out, r"^llm-eval prompts: ").removeprefix("llm-eval prompts: "))
    return "\n".join(lines)


def _greet_project(runs: Runs) -> Path:
    """A suite whose app renders the prompt ``greet``: blessed with v1, then edited to v2."""
    folder = runs.project("greet", {
        "evals/greet.jsonl": '{"id": "ada", "inputs": {"name": "Ada"}, "expected": "Ada"}\n'
                             '{"id": "bob", "inputs": {"name": "Bob"}, "expected": "Bob"}\n',
        "prompts/greet.yaml": "label: v1\ntemplate: 'Hello {name}'\n",
        "prompts/summary.yaml": "template: |\n  Summarize in one line: {text}\n",
        "pyproject.toml": "[tool.pytest.ini_options]\n",
        "test_greet.py": """
            import pytest
            from pytest_llmeval.prompts import render

            def greet(name):
                return render("greet", name=name)

            @pytest.mark.llm_eval(dataset="evals/greet.jsonl", target=greet, scorers=["contains"])
            def test_greet(llm_case, llm_eval):
                pass
            """,
    })
    if not (folder / ".llm-eval" / "prompt-log.jsonl").exists():
        runs.run(folder, "--llm-eval-update")
        (folder / "prompts" / "greet.yaml").write_text("label: v2-formal\ntemplate: 'Good day, {name}.'\n", encoding="utf-8")
    return folder


@recipe("prompts-version-note")
def _prompts_version_note(runs: Runs) -> str:
    return section(runs.run(_greet_project(runs), "--llm-eval"), r"^test_greet.py::test_greet  dataset", r"^  note: prompt greet")


@recipe("prompts-list")
def _prompts_list(runs: Runs) -> str:
    folder = _greet_project(runs)
    runs.run(folder, "--llm-eval")  # the version-note run comes first: it must see v2 unblessed
    runs.run(folder, "--llm-eval-update", "-q")  # bless v2 (another command line than the v1 blessing: not cached)
    return "$ llm-eval prompts\n" + runs.run(folder, "llm-eval", "prompts", pytest=False).strip()


def _repeats_project(runs: Runs) -> Path:
    """40 cases x 3 repeats of ``contains``. A case passes a fixed number of its 3 repeats
    (order-free, so the per-case means are deterministic): baseline 0.900, current 0.925
    (10 flaky cases now always pass, 7 stable ones now miss one repeat in 3)."""
    folder = runs.project("repeats", {
        "data.jsonl": "".join(json.dumps({"id": f"q{i:02d}", "inputs": {"i": i}, "expected": "yes"}) + "\n" for i in range(40)),
        "pyproject.toml": "[tool.pytest.ini_options]\n",
        "test_rep.py": """
            import collections
            import os
            import threading
            import pytest

            calls = collections.Counter()
            lock = threading.Lock()

            def passes(i):
                if os.environ.get("APP") == "baseline":
                    return 3 if i < 28 else 2
                return 2 if i < 7 or i >= 38 else 3

            def app(i):
                with lock:
                    k = calls[i] % 3
                    calls[i] += 1
                return "yes" if k < passes(i) else "no"

            @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], repeats=3)
            def test_rep(llm_case, llm_eval):
                pass
            """,
    })
    bless(runs, folder)
    return folder


@recipe("gate-non-inferiority")
def _gate_non_inferiority(runs: Runs) -> str:
    out = runs.run(_repeats_project(runs), "--llm-eval", "--llm-eval-non-inferiority")
    return grep(out, r"^contains regressed", r"^contains vs baseline")


@recipe("gate-repeats-flaky")
def _gate_repeats_flaky(runs: Runs) -> str:
    return section(runs.run(_repeats_project(runs), "--llm-eval"), r"^test_rep.py::test_rep  dataset", r"^  note: \d+ flaky")


@recipe("gate-calibration-test")
def _gate_calibration_test(runs: Runs) -> str:
    out = runs.run(REPO, "-s", "-q", "tests/test_calibration.py")
    return grep(out, r"^unchanged app, n=", r"^true 5-point drop")


@recipe("gate-insufficient-evidence")
def _gate_insufficient_evidence(runs: Runs) -> str:
    folder = runs.project("insufficient", {
        "data.jsonl": "".join(json.dumps({"id": f"q{i:02d}", "inputs": {"i": i}}) + "\n" for i in range(20)),
        "pyproject.toml": "[tool.pytest.ini_options]\n",
        "test_eval.py": """
            import os
            import pytest

            @pytest.mark.llm_eval(dataset="data.jsonl")
            def test_quality(llm_case, llm_eval):
                # every case loses exactly 0.05: the paired differences have no variance
                shift = 0.0 if os.environ.get("APP") == "baseline" else 0.05
                llm_eval.record("quality", (llm_case.inputs["i"] % 4) / 4 * 0.8 + 0.1 - shift)
            """,
    })
    bless(runs, folder)
    return grep(runs.run(folder, "--llm-eval"), r"^  note: quality: insufficient evidence")


@recipe("gate-calibration")
def _gate_calibration(runs: Runs) -> str:
    out = runs.run(REPO, "python", "benchmarks/gate_calibration.py", pytest=False)
    return "\n".join(line for line in section(out, r"^gate: exact", r"^every cell within").splitlines()
                     if not line.startswith("finished in"))

# -- docs/production.md: the monitoring commands, run in-process on seeded data ------------


def _cli(folder: Path, main: Callable[[list[str]], int], *args: str) -> str:
    """stdout+stderr of a console-script ``main(args)`` run in ``folder``."""
    import contextlib
    import io

    out = io.StringIO()
    before = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main(list(args))
    finally:
        os.chdir(before)
    return out.getvalue()


@recipe("production-history")
def _production_history(runs: Runs) -> str:
    """The history acceptance scenario (a 6% drop from day 20, a latency spike on day 28), abridged."""
    import test_history_trends as trends
    from history_docs import seeded_month
    from pytest_llmeval.cli import main
    from pytest_llmeval.monitoring.history import HistoryStore, history_url

    folder = runs.root / "production-history"
    folder.mkdir(exist_ok=True)
    with HistoryStore(history_url("", folder)) as store:
        seeded_month(folder / "b", store)
    (folder / "llmops-config.yaml").write_text("monitoring:\n  quality_alert_threshold: -0.05\n  latency_p95_alert_ms: 3000\n")
    out = _cli(folder, main, "history", "--since", "12d", "--now", trends.NOW, "--config", "llmops-config.yaml")
    lines = out.splitlines()
    return "\n".join(lines[:14] + lines[27:])


def _shadow_folder(runs: Runs) -> Path:
    import test_shadow

    folder = runs.root / "production-shadow"
    if not folder.exists():
        folder.mkdir()
        test_shadow._write(folder / "shadow.jsonl", test_shadow._records("enterprise"))
        (folder / "llmops-config.yaml").write_text(test_shadow.CONFIG)
    return folder


@recipe("production-shadow")
def _production_shadow(runs: Runs) -> str:
    from pytest_llmeval.cli import main

    return _cli(_shadow_folder(runs), main, "shadow", "shadow.jsonl", "--scorer", "exact_match", "-o", "shadow.json")


@recipe("production-check")
def _production_check(runs: Runs) -> str:
    from pytest_llmeval.check.cli import main

    _production_shadow(runs)
    return _cli(_shadow_folder(runs), main, "llmops-config.yaml", "--shadow", "shadow.json")


@recipe("production-cost")
def _production_cost(runs: Runs) -> str:
    """One feature tripling its output tokens on one day, abridged to that day and the alert."""
    import test_cost_monitor
    from pytest_llmeval.cli import main

    folder = runs.root / "production-cost"
    folder.mkdir(exist_ok=True)
    test_cost_monitor._write(folder / "requests.jsonl", test_cost_monitor._log())
    lines = ", ".join(f'"{model} = {p_in} / {p_out}"' for model, (p_in, p_out) in test_cost_monitor.PRICES.items())
    (folder / "pyproject.toml").write_text(f"[tool.pytest.ini_options]\nllm_eval_prices = [{lines}]\n", encoding="utf-8")
    out = _cli(folder, main, "cost", "requests.jsonl", "--daily-budget", "3.5", "--alert-threshold", "0.8")
    return section(out, r"^2026-05-05 ", r"^    pro ") + "\n" + section(out, r"^1 alert")


EXAMPLE_NAMES = sorted(RECIPES)
# Recipes that run a benchmark for minutes: the test suite leaves them to CI's extra step
# (``python tests/docs_examples.py --check NAME``), as it leaves slow simulations to benchmarks/.
SLOW = frozenset({"gate-calibration"})


_SDK_CONFTEST = """
    import os
    from pytest_llmeval.testing import LoopbackLLMServer

    _server = None

    def pytest_configure(config):
        global _server
        if hasattr(config, "workerinput"):
            return
        drop = os.environ.get("DROP_USAGE") == "1"  # some OpenAI-compatible servers send none
        _server = LoopbackLLMServer(lambda request: "yes it is",
                                    reshape=(lambda request, payload: {k: v for k, v in payload.items() if k != "usage"}) if drop else None)
        os.environ["SDK_BASE_URL"] = _server.start().base_url

    def pytest_unconfigure(config):
        if _server is not None:
            _server.stop()
    """


def _sdk_project(runs: Runs, name: str, marker: str = "") -> Path:
    """Two cases whose app calls the real ``openai`` SDK against a loopback server."""
    return runs.project(name, {
        "data.jsonl": "".join(json.dumps({"id": f"c{i:03d}", "inputs": {"question": f"question {i}"}, "expected": "yes"}) + "\n"
                              for i in range(3)),
        "pyproject.toml": "[tool.pytest.ini_options]\n",
        "conftest.py": _SDK_CONFTEST,
        "test_eval.py": f"""
            import os
            import openai
            import pytest

            client = openai.OpenAI(base_url=os.environ["SDK_BASE_URL"], api_key="sk-example")

            def app(question):
                answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": question}}])
                return answer.choices[0].message.content

            @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"]{marker})
            def test_eval(llm_case, llm_eval):
                pass
            """,
    })


@recipe("providers-strict-sdk-miss")
def _providers_strict_sdk_miss(runs: Runs) -> str:
    out = runs.run(_sdk_project(runs, "sdk-miss"), "--llm-eval", "--llm-eval-cache=strict", "-q")
    return next(line for line in out.splitlines() if line.startswith("case 'c000': app raised CacheMissError"))


@recipe("providers-not-judged")
def _providers_not_judged(runs: Runs) -> str:
    folder = _sdk_project(runs, "sdk-no-usage", ', budgets={"max_cost_per_case": 0.001}')
    os.environ["DROP_USAGE"] = "1"
    try:
        out = runs.run(folder, "--llm-eval", "-q")
    finally:
        os.environ.pop("DROP_USAGE", None)
    return grep(out, r"^  usage: ", r"^  cost_per_case: ")

def _on_loopback(runs: Runs, folder: Path, answer: Callable[[dict], str], *args: str) -> str:
    """``runs.run`` with a loopback server answering ``answer`` at $LOOPBACK_BASE_URL."""
    from pytest_llmeval.testing import LoopbackLLMServer

    with LoopbackLLMServer(answer) as server:
        os.environ["LOOPBACK_BASE_URL"] = server.base_url
        try:
            return runs.run(folder, *args)
        finally:
            os.environ.pop("LOOPBACK_BASE_URL", None)


def _without_latency(text: str) -> str:
    """Latency lines change from run to run (and so may their verdict): the docs leave them out."""
    return "\n".join(line for line in text.splitlines()
                     if "latency" not in line and not re.search(r" vs \w+: (faster|slower):", line))


@recipe("variants-terminal")
def _variants_terminal(runs: Runs) -> str:
    from test_variants import APP, N, PROMPTS, VARIANTS, seeded_answer

    rows = "".join(json.dumps({"id": f"q{i:03d}", "inputs": {"question": f"question {i}"}, "expected": "yes"}) + "\n"
                   for i in range(N))
    folder = runs.project("variants", {"data.jsonl": rows, "pyproject.toml": "[tool.pytest.ini_options]\n",
                                       "test_ab.py": APP.format(variants=VARIANTS, extra=""),
                                       **{f"prompts/{name}.txt": text for name, text in PROMPTS.items()}})
    out = _on_loopback(runs, folder, seeded_answer, "--llm-eval", "-q")
    return _without_latency(section(out, r"^test_ab.py::test_support  variants", r"^  concise vs control: cheaper"))


@recipe("variants-parity")
def _variants_parity(runs: Runs) -> str:
    from test_variants_routes import APP, CONFIG, N, answer_with

    rows = "".join(json.dumps({"id": f"g{i:03d}", "inputs": {"question": f"question {i}"}, "expected": "yes"}) + "\n"
                   for i in range(N))
    folder = runs.project("routes", {"data.jsonl": rows, "pyproject.toml": "[tool.pytest.ini_options]\n",
                                     "llmops-config.yaml": CONFIG, "test_golden.py": APP})
    out = _on_loopback(runs, folder, answer_with("gpt-4o"), "--llm-eval", "-q", "--llm-eval-routes", "llmops-config.yaml")
    return grep(out, r"^  parity: ")


def generate(names: list[str]) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="llm-eval-docs-") as tmp:
        runs = Runs(Path(tmp))
        return {name: RECIPES[name](runs) for name in names}


def write_blocks(outputs: dict[str, str]) -> list[str]:
    """Rewrite every marked block whose recipe ran; return the blocks that changed."""
    changed = []
    for path in DOCS:
        blocks, _ = find_blocks(path)
        lines = path.read_text(encoding="utf-8").splitlines()
        for block in reversed(blocks):
            if block.kind != "example" or block.name not in outputs or normalise(outputs[block.name]) == normalise(block.text):
                continue
            body = [block.indent + line if line else line for line in outputs[block.name].strip("\n").splitlines()]
            count = len(block.text.splitlines()) if block.text else 0
            lines[block.line:block.line + count] = body
            changed.append(block.where)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


def check(outputs: dict[str, str]) -> list[str]:
    """The marked blocks whose shown text differs from what their recipe printed."""
    return [block.where for path in DOCS for block in find_blocks(path)[0]
            if block.kind == "example" and block.name in outputs and normalise(outputs[block.name]) != normalise(block.text)]


def main(argv: list[str]) -> int:
    """``--write``: rewrite the blocks; ``--check``: exit 1 when one drifted; else print."""
    write = "--write" in argv
    if "--check" in argv:
        names = [a for a in argv if not a.startswith("-")] or sorted(RECIPES)
        drifted = check(generate(names))
        for where in drifted:
            print(f"{where}: shows output a real run no longer prints (python tests/docs_examples.py --write)")
        return 1 if drifted else 0
    names = [a for a in argv if not a.startswith("-")] or sorted(RECIPES)
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        print(f"unknown recipe(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    outputs = generate(names)
    if write:
        for where in write_blocks(outputs):
            print(f"rewrote {where}")
    else:
        for name, text in outputs.items():
            print(f"--- {name}\n{text}")
    return 0



# --------------------------------------------------------------------------- checker, providers, merge

def _checker_config(thresholds: str, min_examples: int) -> str:
    """The seed article's llmops-config.yaml (as tests/test_check_config.py holds it) with the
    golden dataset's thresholds and size of the recipe's project, 20M requests a day."""
    from test_check_config import SEED

    return (SEED.replace("{correctness: 0.85, faithfulness: 0.90, relevance: 0.80}", thresholds)
            .replace("min_examples: 500", f"min_examples: {min_examples}")
            + "traffic: {requests_per_day: 20000000}\n")


@recipe("checker-intro")
def _checker_intro(runs: Runs) -> str:
    """Two suites on the golden dataset (Claude, the primary, and gpt-4o-mini, the
    fallback) and no baseline: the routed gpt-4o was never evaluated and the projected
    cost is over the alert line."""
    rows = "".join(json.dumps({"id": f"g{i:03d}", "inputs": {"question": f"question {i}"}, "expected": "yes"}) + "\n"
                   for i in range(60))
    folder = runs.project("checker-intro", {
        "evals/golden-v3.jsonl": rows, "prompts/.keep": "", "pyproject.toml": "[tool.pytest.ini_options]\n",
        "llmops-config.yaml": _checker_config("{contains: 0.80}", 50),
        "test_golden.py": """
            import os
            import pytest
            from pytest_llmeval.providers import ChatClient

            claude = ChatClient(provider="anthropic", base_url=os.environ["LOOPBACK_BASE_URL"], model="claude-sonnet-4")
            mini = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o-mini")

            @pytest.mark.llm_eval(dataset="evals/golden-v3.jsonl", target=lambda question: claude.complete(question),
                                  scorers=["contains"], thresholds={"contains": 0.8})
            def test_claude(llm_case, llm_eval):
                pass

            @pytest.mark.llm_eval(dataset="evals/golden-v3.jsonl", target=lambda question: mini.complete(question),
                                  scorers=["contains"], thresholds={"contains": 0.8})
            def test_mini(llm_case, llm_eval):
                pass
            """,
    })
    _on_loopback(runs, folder, lambda request: "yes, see the help page", "--llm-eval", "-q", "--llm-eval-report=report.json")
    command = ("llm-eval-check", "llmops-config.yaml", "--report", "report.json")
    return "$ " + " ".join(command) + "\n" + runs.run(folder, *command, pytest=False)


@recipe("checker-canary-hold")
def _checker_canary_hold(runs: Runs) -> str:
    """The first 40 cases of a canary: control and candidate answer every case alike."""
    rows = "".join(json.dumps({"id": f"g{i:03d}", "inputs": {"i": i}, "expected": "yes"}) + "\n" for i in range(40))
    suite = """
        @pytest.mark.llm_eval(dataset="evals/golden-v3.jsonl")
        def test_{name}(llm_case, llm_eval):
            llm_eval.record("correctness", 0.0 if llm_case.inputs["i"] == 7 else 1.0)
            llm_eval.record("faithfulness", 1.0)
            llm_eval.record("relevance", 1.0)
        """
    from test_check_config import FULL  # the seed config with traffic, a canary plan and feature flags

    config = FULL.replace("min_examples: 500", "min_examples: 40")
    folder = runs.project("checker-canary", {
        "evals/golden-v3.jsonl": rows, "prompts/.keep": "", "pyproject.toml": "[tool.pytest.ini_options]\n",
        "llmops-config.yaml": config,
        "test_golden.py": "import pytest\n" + "".join(textwrap.dedent(suite).replace("{name}", n) for n in ("claude", "gpt4o")),
    })
    runs.run(folder, "--llm-eval", "-q", "--llm-eval-report=first40.json")
    out = runs.run(folder, "llm-eval-check", "llmops-config.yaml", "--canary", "--report", "first40.json", "--control",
                   "test_golden.py::test_claude", "--candidate", "test_golden.py::test_gpt4o", "--current-stage", "5", pytest=False)
    return ("$ llm-eval-check llmops-config.yaml --canary --report first40.json --control test_golden.py::test_claude \\\n"
            "      --candidate test_golden.py::test_gpt4o --current-stage 5\n" + out)


_LOOPBACK_ADDRESS = re.compile(r"127\.0\.0\.1:\d+")


def _shown_port(text: str, port: int) -> str:
    """A loopback server listens on a free port; the docs show one fixed port."""
    return _LOOPBACK_ADDRESS.sub(f"127.0.0.1:{port}", text)


@recipe("providers-final-errors")
def _providers_final_errors(runs: Runs) -> str:
    folder = runs.project("final-errors", {"errors.py": """
        from pytest_llmeval.errors import ProviderError
        from pytest_llmeval.providers import ChatClient
        from pytest_llmeval.testing import Faults, LoopbackLLMServer

        with LoopbackLLMServer(default_answer="Paris") as server:
            server.faults = Faults(fail_first=3, fail_status=503)   # more failures than retries
            client = ChatClient(base_url=server.base_url, model="gpt-4o-mini", max_retries=2, backoff_base=0.01)
            try:
                client.complete("Capital of France?")
            except ProviderError as exc:
                print(exc)
            server.faults, server.latency = None, 1.0                 # slower than the timeout
            client = ChatClient(base_url=server.base_url, model="gpt-4o-mini", timeout=0.2, max_retries=1, backoff_base=0.01)
            try:
                client.complete("Capital of France?")
            except ProviderError as exc:
                print(exc)
        """})
    return _shown_port(runs.run(folder, "python", "errors.py", pytest=False), 8000)


@recipe("providers-strict-miss")
def _providers_strict_miss(runs: Runs) -> str:
    folder = runs.project("strict-miss", {
        "data.jsonl": json.dumps({"id": "paris", "inputs": {"question": "Capital of France?"}, "expected": "Paris"}) + "\n",
        "pyproject.toml": "[tool.pytest.ini_options]\n",
        "test_eval.py": """
            import pytest
            from pytest_llmeval.providers import ChatClient

            client = ChatClient(base_url="http://127.0.0.1:8000/v1", model="gpt-4o-mini")

            @pytest.mark.llm_eval(dataset="data.jsonl", target=lambda question: client.complete(question), scorers=["contains"])
            def test_capitals(llm_case, llm_eval):
                pass
            """,
    })
    out = runs.run(folder, "--llm-eval", "--llm-eval-cache=strict", "-q")
    return next(line for line in out.splitlines() if line.startswith("case 'paris': app raised CacheMissError"))


@recipe("providers-usage-line")
def _providers_usage_line(runs: Runs) -> str:
    rows = "".join(json.dumps({"id": city, "inputs": {"question": f"Capital of {country}?"}, "expected": city}) + "\n"
                   for city, country in (("Paris", "France"), ("Rome", "Italy")))
    folder = runs.project("usage-line", {
        "data.jsonl": rows, "pyproject.toml": "[tool.pytest.ini_options]\n",
        "test_eval.py": """
            import os
            import pytest
            from pytest_llmeval.providers import ChatClient

            client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o-mini")

            @pytest.mark.llm_eval(dataset="data.jsonl", target=lambda question: client.complete(question), scorers=["contains"])
            def test_capitals(llm_case, llm_eval):
                pass
            """,
    })
    answers = {"Capital of France?": "Paris", "Capital of Italy?": "Rome"}
    out = _on_loopback(runs, folder, lambda request: answers[request["messages"][-1]["content"]], "--llm-eval", "-q")
    return grep(out, r"^\s*usage: ").strip()


@recipe("providers-server-cli")
def _providers_server_cli(runs: Runs) -> str:
    command = [sys.executable, "-m", "pytest_llmeval.testing.server", "--port", "0", "--latency-ms", "50", "--default-answer", "Paris"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = server.stdout.readline()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return "$ python -m pytest_llmeval.testing.server " + " ".join(command[3:]) + "\n" + _shown_port(first, 41819)


@recipe("report-merge")
def _report_merge(runs: Runs) -> str:
    folder = binary_suite(runs, "merge-shards", 37, 35, 35)
    bless(runs, folder)
    for i in (1, 2, 3):
        runs.run(folder, "--llm-eval", "-q", f"--llm-eval-shard={i}/3", f"--llm-eval-report=shard{i}.json")
    command = ("llm-eval", "merge", "shard1.json", "shard2.json", "shard3.json", "-o", "merged.json", "--markdown", "merged.md")
    return "$ " + " ".join(command) + "\n" + runs.run(folder, *command, pytest=False)


@recipe("report-merge-missing-shard")
def _report_merge_missing_shard(runs: Runs) -> str:
    _report_merge(runs)
    folder = runs.root / "merge-shards"
    command = ("llm-eval", "merge", "shard1.json", "shard2.json", "-o", "partial.json")
    return "$ " + " ".join(command) + "\n" + runs.run(folder, *command, pytest=False)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
