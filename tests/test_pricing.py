"""The price table: lookups, costs, overrides, and the ini and YAML parsers."""

from __future__ import annotations

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.providers.pricing import Price, PriceTable, load_price_file, parse_price_lines, price_source


@pytest.fixture
def table() -> PriceTable:
    return PriceTable.default()


def test_default_table_is_the_price_library(table):
    assert table.names() == []  # no overrides: every price comes from genai-prices
    assert table.cost("gpt-4o", 1_000_000, 0) == pytest.approx(2.50)
    assert table.cost("gpt-4o-mini-2024-07-18", 2000, 500) == pytest.approx((2000 * 0.15 + 500 * 0.60) / 1e6)
    assert table.cost("claude-sonnet-4-20250514", 1_000_000, 1_000_000, provider="anthropic") == pytest.approx(18.0)
    assert table.cost("claude-sonnet-4", 0, 0) == 0.0
    source = price_source()
    assert source["library"] == "genai-prices" and source["version"].startswith("0.2.")
    assert source["date"] is not None and len(source["date"]) == 10


def test_openai_cached_tokens_have_their_own_rate(table):
    # 10,000 prompt tokens of which 9,000 cached, 100 completion tokens at gpt-4o-mini rates:
    # 1,000 x 0.15 + 9,000 x 0.075 + 100 x 0.60 per million = $0.000885 (not $0.001560)
    cost = table.cost("gpt-4o-mini", 10_000, 100, cached_input_tokens=9_000, provider="openai")
    assert cost == pytest.approx(0.000885, abs=1e-12)
    assert table.cost("gpt-4o-mini", 10_000, 100, provider="openai") == pytest.approx(0.001560, abs=1e-12)


def test_anthropic_cache_writes_and_reads_have_their_own_rates(table):
    # 10 input + 1,000 cache-write + 5,000 cache-read + 5 output tokens at claude-sonnet-4 rates:
    # 10 x 3 + 1,000 x 3.75 + 5,000 x 0.30 + 5 x 15 per million = $0.005355
    cost = table.cost("claude-sonnet-4", 6_010, 5, cached_input_tokens=5_000, cache_write_tokens=1_000, provider="anthropic")
    assert cost == pytest.approx(0.005355, abs=1e-12)


@pytest.mark.parametrize("model", ["loopback-model", "claude-haiku-3.5", "gemini-2.0-pro", "my-finetune", "", "openai/"])
def test_unknown_models_are_unpriced_never_zero(table, model):
    assert table.cost(model, 1000, 1000) is None
    assert model not in table


@pytest.mark.parametrize(("model", "expected"), [
    ("house-mini-2024-07-18", "house-mini"),
    ("house-2024-08-06", "house"),
    ("house-latest", "house"),
    ("house-0513", "house"),
    ("house@20250514", "house"),
    ("house-001", "house"),
    ("openai/house", "house"),
    ("openrouter/vendor/house-mini", "house-mini"),
])
def test_overrides_match_dated_and_prefixed_names(model, expected):
    table = PriceTable({"house": Price(1, 2), "house-mini": Price(3, 4)}, library=False)
    assert table.price_for(model) == table.price_for(expected) is not None


@pytest.mark.parametrize("model", ["house-audio-preview", "house-5", "house-", "house-2024-08", "House", "house/extra"])
def test_overrides_never_guess(model):
    table = PriceTable({"house": Price(1, 2)}, library=False)
    assert table.price_for(model) is None
    assert table.cost(model, 1000, 1000) is None


def test_overrides_win_over_the_library_and_longest_match():
    base = PriceTable.default()
    table = base.with_overrides({"gpt-4o": Price(1.0, 2.0), "my-model": Price(0.5, 1.5, 0.1), "openai/special": Price(9, 9)})
    assert base.cost("gpt-4o", 1_000_000, 0) == pytest.approx(2.5)  # the original is unchanged
    assert table.cost("gpt-4o-2024-08-06", 1_000_000, 0) == pytest.approx(1.0)
    assert table.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)  # still the library's
    assert table.price_for("my-model-latest") == Price(0.5, 1.5, 0.1)
    assert table.cost("my-model", 1_000_000, 0, cached_input_tokens=500_000) == pytest.approx(0.25 + 0.05)
    assert table.price_for("openai/special") == Price(9, 9)  # an explicit prefixed name wins
    assert table.price_for("special") is None
    longest = PriceTable({"m": Price(1, 1), "m-1234": Price(2, 2)})
    assert longest.price_for("m-1234-20250101") == Price(2, 2)
    assert longest.price_for("m-20250101") == Price(1, 1)


def test_an_override_without_cache_rates_bills_cached_tokens_at_the_input_rate():
    price = Price(2.0, 8.0)
    assert price.cost(1_000_000, 0, cached_input_tokens=400_000, cache_write_tokens=100_000) == pytest.approx(2.0)


def test_cache_rates_in_both_forms(tmp_path):
    assert parse_price_lines(["m = 3 / 15 / 0.3 / 3.75"], "ini")["m"] == Price(3, 15, 0.3, 3.75)
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  m: {input: 3, output: 15, cached_input: 0.3, cache_write: 3.75}\n", encoding="utf-8")
    assert load_price_file(path)["m"] == Price(3, 15, 0.3, 3.75)


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
    ("my-model = 0.5 / 1.5 / 2 / 3 / 4", "expected 'model = input / output'"),
    ("my-model = 0.5 / 1.5 / ", "expected 'model = input / output'"),
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
    ("models:\n  a:\n    input: 1\n    output: 2\n    cache_read: 0.1\n", 5, "models.a.cache_read: unknown key"),
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
