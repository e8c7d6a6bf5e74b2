"""pytest entry point: options, the marker, the fixtures, and parametrization.

Loaded on every pytest run of a user's project, so it imports nothing heavy. Without
``--llm-eval`` it only marks eval items skipped; with it, ``pytest_configure`` builds one
:class:`~pytest_llmeval.glue.session.EvalSession` and registers it as a plugin, and the hooks
here delegate to it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from .errors import ConfigError, LLMEvalError
from .glue import options

if TYPE_CHECKING:
    from .core.recorder import EvalRecorder

__all__ = ["SESSION_KEY", "llm_case", "llm_client", "llm_eval", "llm_eval_loop", "llm_prompts", "llm_server"]

SESSION_KEY = pytest.StashKey["EvalSession"]()
_ADDOPTS_KEY = pytest.StashKey["str"]()  # PYTEST_ADDOPTS as it was before the workers were handed theirs
_MARKER_HELP = (
    "llm_eval(dataset, scorers=[...], thresholds={...}, case_thresholds={...}, target=None, repeats=1, max_drop=...): "
    "run the test once per dataset row as an LLM eval case (needs --llm-eval)"
)
_SKIP_REASON = "LLM eval: pass --llm-eval to run (evals call models: they cost money and time)"


_VALUE_OPTIONS: set[str] = set()  # this plugin's options that take a value, for the rootdir check


def pytest_addoption(parser: pytest.Parser) -> None:
    global _VALUE_OPTIONS
    options.add_options(parser)
    _VALUE_OPTIONS = options.value_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    try:
        settings = options.resolve(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if settings.enabled:
        from .glue.rootdir import rootdir_mistake
        from .glue.session import EvalSession

        explicit = bool(config.option.rootdir or config.option.inifilename) or hasattr(config, "workerinput")
        mistake = rootdir_mistake(_rootdir_args(config), _VALUE_OPTIONS, config.invocation_params.dir,
                                  config.rootpath, explicit=explicit)
        if mistake is not None:
            raise pytest.UsageError(mistake)
        try:
            session = EvalSession(config, settings)
        except LLMEvalError as exc:
            raise pytest.UsageError(str(exc)) from None
        controller_root = getattr(config, "workerinput", {}).get("llm_eval_rootdir")
        if controller_root is not None and controller_root != str(config.rootpath):
            # Not a UsageError: xdist would take it for a crash and start the worker again, and again.
            session.rootdir_mismatch = (f"this xdist worker chose the rootdir {config.rootpath}, the controller "
                                        f"{controller_root}: suite ids and baselines would not match; pass "
                                        f"--rootdir={controller_root}")
        config.stash[SESSION_KEY] = session
        config.pluginmanager.register(session, "llmeval-session")


def _rootdir_args(config: pytest.Config) -> list[str]:
    """The arguments pytest chose its rootdir from: PYTEST_ADDOPTS, then the command line
    (the ini's ``addopts`` are read after the rootdir, so they cannot move it)."""
    import os
    import shlex

    return [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: Any) -> None:
    """xdist workers parse the command line and PYTEST_ADDOPTS again once this run has
    written its in-progress report: an output path given as a separate argument then
    exists, and pytest would take it for a test path and choose another rootdir (other
    suite ids, no baseline, another cache folder). Hand them ``--option=value`` instead;
    argparse reads both forms alike."""
    if SESSION_KEY not in config.stash:
        return
    import dataclasses
    import os
    import shlex

    from .glue.rootdir import joined_option_values

    args = config.invocation_params.args
    joined = joined_option_values(args, _VALUE_OPTIONS)
    if joined != list(args):
        config.invocation_params = dataclasses.replace(config.invocation_params, args=tuple(joined))
    addopts = shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    joined = joined_option_values(addopts, _VALUE_OPTIONS)
    if joined != addopts:  # the workers inherit this process's environment; unconfigure restores it
        config.stash[_ADDOPTS_KEY] = os.environ["PYTEST_ADDOPTS"]
        os.environ["PYTEST_ADDOPTS"] = shlex.join(joined)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        config.pluginmanager.unregister(session)
        del config.stash[SESSION_KEY]
    addopts = config.stash.get(_ADDOPTS_KEY, None)
    if addopts is not None:
        import os

        os.environ["PYTEST_ADDOPTS"] = addopts
    runner = sys.modules.get("pytest_llmeval.core.runner")
    if runner is not None:  # the run's event loop (llm_eval_loop) ends with the run
        runner.close_eval_loop()
    registry = sys.modules.get("pytest_llmeval.scorers.registry")
    if registry is not None:  # @scorer registrations belong to this run's conftests and modules
        registry.clear_user_scorers()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("llm_eval")
    if marker is None:
        return
    if "llm_case" not in metafunc.fixturenames:
        raise pytest.Collector.CollectError(
            f"{metafunc.definition.nodeid}: a test marked llm_eval must request the llm_case or llm_eval fixture"
        )
    session = metafunc.config.stash.get(SESSION_KEY, None)
    if session is None:
        metafunc.parametrize("llm_case", [pytest.param(None, marks=pytest.mark.skip(reason=_SKIP_REASON), id="llm-eval-off")])
    else:
        session.parametrize(metafunc, marker)


@pytest.fixture
def llm_case(request: pytest.FixtureRequest) -> Any:
    """The current dataset row (a :class:`~pytest_llmeval.models.Case`)."""
    pytest.fail("llm_case is only available in tests marked @pytest.mark.llm_eval(dataset=...)", pytrace=False)


@pytest.fixture
def llm_eval(request: pytest.FixtureRequest, llm_case: Any) -> EvalRecorder:
    """Records scores for the current case; with the marker's target= it holds the app's output."""
    return request.config.stash[SESSION_KEY].recorder_for(request.node, llm_case)


@pytest.fixture(scope="session")
def llm_eval_loop() -> Any:
    """The event loop async targets run on: one per test process (xdist worker), for the
    whole run (:class:`~pytest_llmeval.core.runner.EvalLoop`). Use an async client shared
    with the targets through it: ``await llm_eval_loop.call(client.get(url))``."""
    from .core.runner import eval_loop

    return eval_loop()


@pytest.fixture
def llm_server() -> Iterator[Any]:
    """A loopback OpenAI/Anthropic-compatible server (see :mod:`pytest_llmeval.testing`)."""
    from .testing import LoopbackLLMServer

    with LoopbackLLMServer() as server:
        yield server


@pytest.fixture
def llm_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A :class:`~pytest_llmeval.providers.ChatClient` with the run's default provider settings."""
    from .providers.client import ChatClient

    # With --llm-eval the run's defaults are set; without it, build them from ini/env here.
    config = None if SESSION_KEY in request.config.stash else options.provider_config(request.config)
    with ChatClient(config) as client:
        yield client


@pytest.fixture
def llm_prompts(request: pytest.FixtureRequest) -> Any:
    """The prompt registry (ini ``llm_eval_prompts_dir``): ``llm_prompts.render("name", **vars)``."""
    session = request.config.stash.get(SESSION_KEY, None)
    if session is not None:
        return session.prompt_registry
    from .prompts import PromptRegistry

    return PromptRegistry(request.config.rootpath / request.config.getini("llm_eval_prompts_dir"))
