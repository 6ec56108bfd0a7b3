"""The depth-limited JSON parser every inbound path uses."""

from __future__ import annotations

import json

import pytest

from chalicelib.sources import safejson


def test_parses_ordinary_json() -> None:
    assert safejson.loads('{"a": [1, {"b": "]]]{{"}], "c": "\\"["}') == {"a": [1, {"b": "]]]{{"}], "c": '"['}


def test_depth_ignores_brackets_inside_strings() -> None:
    assert safejson.depth('{"x": "[[[[[[[[[["}') == 1
    assert safejson.depth('"just a string"') == 0
    assert safejson.depth("[[[]]]") == 3


@pytest.mark.parametrize("deep", [65, 50_000, 100_000])
def test_deep_nesting_is_refused_without_recursion(deep: int) -> None:
    with pytest.raises(safejson.JsonRejected, match="deeper than 64"):
        safejson.loads("[" * deep + "]" * deep)
    with pytest.raises(ValueError):  # callers catching ValueError keep working
        safejson.loads('{"a":' * deep + "1" + "}" * deep)


def test_unbalanced_deep_input_is_refused_too() -> None:
    with pytest.raises(ValueError):
        safejson.loads("[" * 100_000)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(constant: str) -> None:
    with pytest.raises(safejson.JsonRejected, match="non-finite"):
        safejson.loads(f'{{"lastSeen": {constant}}}')


def test_bytes_and_syntax_errors() -> None:
    assert safejson.loads(b'{"k": 1e20}') == {"k": 1e20}
    with pytest.raises(json.JSONDecodeError):
        safejson.loads("{not json")
