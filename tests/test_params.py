"""Declared hyperparameters: coercion from strings, ranges, choices, unknown keys."""

import pytest

from seqbench import Param, SeqbenchError
from seqbench.params import resolve


def test_coerce_converts_strings_from_the_command_line():
    assert Param("n", int, 1, low=1).coerce("12") == 12
    assert Param("x", float, 0.1).coerce("1e-3") == pytest.approx(1e-3)
    assert Param("flag", bool, False).coerce("true") is True
    assert Param("flag", bool, False).coerce("0") is False


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        (Param("n", int, 1, low=1), "0", "below the minimum 1"),
        (Param("n", int, 1, high=4), 5, "above the maximum 4"),
        (Param("n", int, 1), "1.5", "not an integer"),
        (Param("x", float, 1.0), "nan", "finite"),
        (Param("x", float, 1.0), "abc", "not a valid float"),
        (Param("c", str, "a", choices=("a", "b")), "z", "choose one of: a, b"),
        (Param("f", bool, True), "maybe", "not a boolean"),
    ],
)
def test_coerce_rejects_bad_values_with_a_precise_message(param, value, message):
    with pytest.raises(SeqbenchError, match=message):
        param.coerce(value)


def test_resolve_fills_defaults_and_names_the_closest_unknown_key():
    params = (Param("hidden_size", int, 8), Param("layers", int, 1))
    assert resolve(params, {"layers": "2"}, "x") == {"hidden_size": 8, "layers": 2}
    with pytest.raises(SeqbenchError, match="Did you mean 'hidden_size'"):
        resolve(params, {"hiden_size": 3}, "x")


def test_search_range_defaults_to_the_validity_bounds():
    assert Param("a", float, 1.0, low=0.0, high=2.0).search_range == (0.0, 2.0)
    assert Param("a", float, 1.0, low=0.0, high=9.0, search=(0.5, 1.5)).search_range == (0.5, 1.5)


def test_a_default_outside_the_declared_range_is_a_plugin_bug():
    with pytest.raises(SeqbenchError):
        Param("n", int, 0, low=1)
