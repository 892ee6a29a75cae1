"""The calculator: arithmetic on numbers, evaluated by walking Python's AST with an allowlist of node kinds
(never ``eval``). Bounded: expression length, nesting depth, exponent size and the size of every integer
computed, so neither code nor a CPU- or memory-bomb (``9**9**9``) gets through."""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Callable
from typing import Any

from tollhouse.tools.base import Tool, ToolFailure

MAX_CHARS = 1000
MAX_DEPTH = 60
MAX_INT_BITS = 4096  # integers past ~1,233 decimal digits are refused
MAX_EXPONENT = 10_000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt,
    "exp": math.exp,
    "ln": math.log,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "min": min,
    "max": max,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "expression": {
            "type": "string",
            "description": "Arithmetic: numbers, + - * / // % ** and parentheses; functions "
            + ", ".join(sorted(_FUNCTIONS))
            + "; constants pi, e, tau.",
            "maxLength": MAX_CHARS,
        }
    },
    "required": ["expression"],
    "additionalProperties": False,
}


def evaluate(expression: str) -> Number:
    """The value of ``expression``, or ``ToolFailure('invalid_expression' | 'math_error')``."""
    if len(expression) > MAX_CHARS:
        raise ToolFailure("invalid_expression", f"expression longer than {MAX_CHARS} characters")
    text = expression.replace("^", "**").strip()
    try:
        with warnings.catch_warnings():  # "1pi" warns before it fails: the failure is the answer
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ToolFailure("invalid_expression", f"not an arithmetic expression: {exc}") from None
    try:
        return _eval(tree.body, 0)
    except ZeroDivisionError:
        raise ToolFailure("math_error", "division by zero") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise ToolFailure("math_error", str(exc) or type(exc).__name__) from None


def _eval(node: ast.expr, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise ToolFailure("invalid_expression", f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolFailure("invalid_expression", f"only numbers are allowed, not {node.value!r}")
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        v = _eval(node.operand, depth + 1)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _eval(node.left, depth + 1)
        right = _eval(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolFailure("invalid_expression", f"unknown name '{node.id}'")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = _FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ToolFailure("invalid_expression", f"unknown function '{node.func.id}'")
        if not node.args or len(node.args) > 8:
            raise ToolFailure("invalid_expression", f"{node.func.id}() takes 1 to 8 arguments")
        args = [_eval(a, depth + 1) for a in node.args]
        if fn is round and len(args) == 2 and not (isinstance(args[1], int) and abs(args[1]) <= 100):
            raise ToolFailure("invalid_expression", "round()'s digits must be an integer within ±100")
        return _bounded(fn(*args))
    raise ToolFailure("invalid_expression", f"'{type(node).__name__}' is not allowed in an expression")


def _check_power(base: Number, exp: Number) -> None:
    if abs(exp) > MAX_EXPONENT:
        raise ToolFailure("math_error", f"exponent larger than {MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and base.bit_length() * exp > MAX_INT_BITS:
        raise ToolFailure("math_error", "result too large")


def _bounded(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolFailure("math_error", "the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolFailure("math_error", "result too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolFailure("math_error", "the result is not finite")
    return value


def format_number(value: Number) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


async def _run(args: dict[str, Any]) -> str:
    return format_number(evaluate(args["expression"]))


def tool() -> Tool:
    return Tool(
        "calculator",
        "Evaluate an arithmetic expression exactly and return its value.",
        PARAMETERS,
        _run,
        timeout_s=2.0,
        concurrency=16,
    )
