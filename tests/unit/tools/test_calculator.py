"""The calculator: right answers, and no way through to code, names or unbounded work."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollhouse.tools.base import ToolFailure
from tollhouse.tools.calculator import evaluate, format_number


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("2+3*4", 14),
        ("(2+3)*4", 20),
        ("2**10", 1024),
        ("2^10", 1024),
        ("7//2", 3),
        ("7%3", 1),
        ("-3 + +2", -1),
        ("sqrt(16)", 4.0),
        ("max(1, 5, 3)", 5),
        ("round(pi, 2)", 3.14),
        ("1e3 / 4", 250.0),
    ],
)
def test_arithmetic(expr: str, value: float) -> None:
    assert evaluate(expr) == value


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('id')",
        "().__class__.__bases__[0].__subclasses__()",
        "open('/etc/passwd').read()",
        "eval('1')",
        "exec('x=1')",
        "lambda: 1",
        "[x for x in range(10)]",
        "'a' * 10",
        "x",
        "True + 1",
        "pi.real",
        "sqrt(x=4)",
        "(1).__add__(2)",
        "{1: 2}",
        "1 if 1 else 2",
        "1 < 2",
        "not 1",
        "1 << 100000",
        "abs",
    ],
)
def test_code_is_refused(expr: str) -> None:
    with pytest.raises(ToolFailure) as e:
        evaluate(expr)
    assert e.value.code in {"invalid_expression", "math_error"}


@pytest.mark.parametrize(
    "expr",
    [
        "9**9**9",
        "10**100000",
        "2**4097",
        "(10**1000)*(10**1000)*(10**1000)",
        "1e308*10",
        "exp(1000)",
        "2.0**99999",
    ],
)
def test_huge_results_are_refused_quickly(expr: str) -> None:
    with pytest.raises(ToolFailure) as e:
        evaluate(expr)
    assert e.value.code == "math_error"


def test_deep_nesting_and_long_input_are_refused() -> None:
    with pytest.raises(ToolFailure):
        evaluate("(" * 300 + "1" + ")" * 300)
    with pytest.raises(ToolFailure):
        evaluate("-" * 100 + "1")
    with pytest.raises(ToolFailure) as e:
        evaluate("1+" * 600 + "1")
    assert e.value.code == "invalid_expression"


def test_math_errors_are_named() -> None:
    for expr, word in (("1/0", "division by zero"), ("sqrt(-1)", "math domain"), ("(-8)**0.5", "not a real")):
        with pytest.raises(ToolFailure) as e:
            evaluate(expr)
        assert word in e.value.message


_ints = st.integers(min_value=-(10**12), max_value=10**12)


@settings(max_examples=300, deadline=None)
@given(_ints, _ints, st.sampled_from(["+", "-", "*"]))
def test_integer_arithmetic_matches_python(a: int, b: int, op: str) -> None:
    expected = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert evaluate(f"({a}) {op} ({b})") == expected


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=32), st.floats(min_value=1, max_value=1e6))
def test_division_matches_python(a: float, b: float) -> None:
    assert math.isclose(evaluate(f"({a!r}) / ({b!r})"), a / b, rel_tol=1e-12, abs_tol=1e-300)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789+-*/%^().,eE pisqrtlogabcdx_[]'\"", max_size=80))
def test_any_input_returns_a_number_or_a_tool_failure(text: str) -> None:
    try:
        value = evaluate(text)
    except ToolFailure:
        return
    assert isinstance(value, int | float) and not isinstance(value, bool)
    assert isinstance(value, int) or math.isfinite(value)
    assert format_number(value)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.integers(0, 99).map(str),
        lambda e: st.tuples(e, st.sampled_from("+-*"), e).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        max_leaves=40,
    )
)
def test_generated_expressions_match_python(expr: str) -> None:
    assert evaluate(expr) == eval(expr)  # the oracle runs on generated digits and operators only
