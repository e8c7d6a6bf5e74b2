"""The price table: lookups, costs, overrides, and the ini and YAML parsers."""

from __future__ import annotations

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.providers.pricing import DEFAULT_PRICES, Price, PriceTable, load_price_file, parse_price_lines


@pytest.fixture
def table() -> PriceTable:
    return PriceTable.default()


def test_default_table(table):
    assert table.names() == sorted(DEFAULT_PRICES)
    assert table.price_for("gpt-4o") == Price(2.50, 10.00)
    assert table.price_for("claude-haiku-3.5") == Price(0.80, 4.00)


@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4o-latest", "gpt-4o"),
    ("gpt-4o-0513", "gpt-4o"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-sonnet-4@20250514", "claude-sonnet-4"),
    ("gemini-2.0-pro-001", "gemini-2.0-pro"),
    ("openai/gpt-4o", "gpt-4o"),
    ("openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("openrouter/anthropic/claude-sonnet-4", "claude-sonnet-4"),
])
def test_dated_and_prefixed_names(table, model, expected):
    assert table.price_for(model) == table.price_for(expected) is not None


@pytest.mark.parametrize("model", [
    "gpt-4o-audio-preview", "gpt-4o-mini-tts", "claude-sonnet-4-5", "gpt-4", "gpt-4o-", "gpt-4o-2024-08",
    "llama3:8b", "GPT-4o", "", "openai/", "gpt-4o/extra",
])
def test_unpriced_is_never_guessed(table, model):
    assert table.price_for(model) is None
    assert table.cost(model, 1000, 1000) is None
    assert model not in table


def test_cost(table):
    assert table.cost("gpt-4o", 1_000_000, 0) == pytest.approx(2.50)
    assert table.cost("gpt-4o-mini-2024-07-18", 2000, 500) == pytest.approx((2000 * 0.15 + 500 * 0.60) / 1e6)
    assert table.cost("claude-sonnet-4", 0, 0) == 0.0


def test_overrides_and_longest_match():
    base = PriceTable.default()
    table = base.with_overrides({"gpt-4o": Price(1.0, 2.0), "my-model": Price(0.5, 1.5), "openai/special": Price(9, 9)})
    assert base.price_for("gpt-4o") == Price(2.5, 10.0)  # the original is unchanged
    assert table.price_for("gpt-4o-2024-08-06") == Price(1.0, 2.0)
    assert table.price_for("gpt-4o-mini") == Price(0.15, 0.60)
    assert table.price_for("my-model-latest") == Price(0.5, 1.5)
    assert table.price_for("openai/special") == Price(9, 9)  # an explicit prefixed name wins
    assert table.price_for("special") is None
    longest = PriceTable({"m": Price(1, 1), "m-1234": Price(2, 2)})
    assert longest.price_for("m-1234-20250101") == Price(2, 2)
    assert longest.price_for("m-20250101") == Price(1, 1)


def test_price_validation():
    with pytest.raises(ConfigError, match=">= 0"):
        Price(-1, 1)
    with pytest.raises(ConfigError, match="number"):
        Price("1", 1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Price"):
        PriceTable({"x": (1, 2)})  # type: ignore[dict-item]


# --------------------------------------------------------------------------- ini form


def test_parse_price_lines():
    lines = ["my-model = 0.5 / 1.5", "", "# comment", "  openai/gpt-x=1e-1/2  ", "free = 0 / 0"]
    assert parse_price_lines(lines, "llm_eval_prices") == {
        "my-model": Price(0.5, 1.5), "openai/gpt-x": Price(0.1, 2.0), "free": Price(0.0, 0.0),
    }


@pytest.mark.parametrize(("line", "problem"), [
    ("my-model 0.5 / 1.5", "expected 'model = input / output'"),
    ("my-model = 0.5", "expected 'model = input / output'"),
    ("my-model = 0.5 / 1.5 / 2", "expected 'model = input / output'"),
    ("my-model = cheap / 1.5", "input price 'cheap' is not a number"),
    ("my-model = 0.5 / -1.5", ">= 0"),
    ("my-model = nan / 1", ">= 0"),
    (" = 1 / 2", "expected 'model = input / output'"),
])
def test_bad_price_lines(line, problem):
    with pytest.raises(ConfigError) as info:
        parse_price_lines(["ok = 1 / 2", line], "pyproject.toml [llm_eval_prices]")
    message = str(info.value)
    assert "pyproject.toml [llm_eval_prices]" in message and "line 2" in message
    assert repr(line.strip()) in message and problem in message


def test_price_line_twice():
    with pytest.raises(ConfigError, match="priced twice"):
        parse_price_lines(["a = 1 / 2", "a = 1 / 3"], "ini")


# --------------------------------------------------------------------------- YAML form


def write(tmp_path, text: str):
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_price_file(tmp_path):
    path = write(tmp_path, "models:\n  my-model: {input: 0.5, output: 1.5}\n  big:\n    input: 3\n    output: 15\n")
    assert load_price_file(path) == {"my-model": Price(0.5, 1.5), "big": Price(3.0, 15.0)}
    bare = write(tmp_path, "my-model:\n  input: 0.5\n  output: 1.5\n")
    assert load_price_file(bare) == {"my-model": Price(0.5, 1.5)}
    assert load_price_file(write(tmp_path, "models: {}\n")) == {}


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("models:\n  a: {input: 1, output: 2}\n  b:\n    input: 1\n", 4, "models.b.output: missing"),
    ("models:\n  a:\n    input: cheap\n    output: 2\n", 3, "models.a.input: not a number: 'cheap'"),
    ("models:\n  a:\n    input: 1\n    output: -2\n", 4, "models.a.output: price must be a finite number >= 0"),
    ("models:\n  a:\n    input: 1\n    output: 2\n    cached_input: 0.1\n", 5, "models.a.cached_input: unknown key"),
    ("models:\n  a:\n    input: true\n    output: 2\n", 3, "models.a.input: not a number"),
    ("models:\n  a:\n    input:\n    output: 2\n", 3, "models.a.input: not a number: nothing"),
    ("models:\n  a: [1, 2]\n", 2, "models.a: expected a mapping, got a list"),
    ("models:\n  a: {input: 1, output: 2}\n  a: {input: 1, output: 3}\n", 3, "models.a: listed twice"),
    ("models:\n  a: {input: 1, output: 2}\nprices: {}\n", 3, "prices: unknown key"),
    ("models:\n  a: {input: 1, output: 2\n", 3, "invalid YAML"),
    ("- a\n- b\n", 1, "expected a mapping"),
    ("a: {input: !!python/name:os.system '', output: 1}\n", 1, "not a number"),
])
def test_bad_price_file_names_file_line_and_field(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_price_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_missing_and_empty_price_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: price file not found"):
        load_price_file(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="empty price file"):
        load_price_file(write(tmp_path, "# nothing\n"))
