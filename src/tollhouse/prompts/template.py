"""Templates in a sandboxed Jinja2 environment, and the variables a version declares.

The environment is immutable-sandboxed (no attribute starting with ``_``, no mutating calls), has no loader
(``include`` / ``import`` / ``extends`` reach nothing), undefined variables are errors, and output stops at a
bound. ``check_template`` refuses at push time what the sandbox would refuse at render time.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tollhouse.errors import InvalidRequest

_MAX_REPEAT = 1_000_000  # items or characters a `*` may build
_MAX_EXPONENT = 256


class _Sandbox(ImmutableSandboxedEnvironment):
    """Also bounds ``*`` (repeating a string or list) and ``**``, which would otherwise build huge values
    before the output bound could see them."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponent larger than {_MAX_EXPONENT}")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > _MAX_REPEAT:
                    raise SecurityError(f"repetition longer than {_MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)

TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
_SPEC_KEYS = {"type", "required", "enum", "max_length", "description", "default"}


def check_template(source: str, where: str) -> None:
    """Refuse a template that does not parse, loads other templates, or reaches an attribute or key that
    starts with an underscore. Raises ``InvalidRequest`` naming ``where``."""
    try:
        tree = _ENV.parse(source)
    except TemplateError as exc:
        raise InvalidRequest(f"{where}: the template does not parse: {exc}", param=where) from None
    for stmt in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        raise InvalidRequest(
            f"{where}: templates may not load other templates ({type(stmt).__name__}).", param=where
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else _const(getattr(node, "arg", None))
        if isinstance(name, str) and name.startswith("_"):
            raise InvalidRequest(f"{where}: templates may not reach {name!r}.", param=where)


def _const(node: nodes.Node | None) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def check_schema(variables: Mapping[str, Any]) -> None:
    """A version's variables: name → ``{"type": string|integer|number|boolean|array|object, "required",
    "enum", "max_length", "description", "default"}``."""
    for name, spec in variables.items():
        where = f"variables.{name}"
        if not isinstance(spec, dict):
            raise InvalidRequest(f'{where}: expected an object such as {{"type": "string"}}.', param=where)
        unknown = set(spec) - _SPEC_KEYS
        if unknown:
            raise InvalidRequest(f"{where}: unknown keys {sorted(unknown)}.", param=where)
        if spec.get("type", "string") not in TYPES:
            raise InvalidRequest(f"{where}.type: one of {sorted(TYPES)}.", param=where)


def bind(variables: Mapping[str, dict[str, Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    """The values to render with: ``given`` checked against the declared variables (defaults filled in).
    A missing, unknown or wrongly typed variable is a 400 naming it. With no declared variables, any are
    accepted (the template's own undefined check still names a missing one)."""
    if not variables:
        return dict(given)
    out: dict[str, Any] = {}
    for name in given:
        if name not in variables:
            raise InvalidRequest(
                f"Unknown prompt variable '{name}' (this version takes: {', '.join(sorted(variables))}).",
                param=f"prompt.variables.{name}",
            )
    for name, spec in variables.items():
        param = f"prompt.variables.{name}"
        if name not in given:
            if "default" in spec:
                out[name] = spec["default"]
                continue
            if spec.get("required", True):
                raise InvalidRequest(f"Missing prompt variable '{name}'.", param=param)
            continue
        value = given[name]
        kind = spec.get("type", "string")
        ok = isinstance(value, TYPES[kind]) and not (
            kind in ("integer", "number") and isinstance(value, bool)
        )
        if not ok:
            raise InvalidRequest(f"Prompt variable '{name}' must be of type {kind}.", param=param)
        if "enum" in spec and value not in spec["enum"]:
            raise InvalidRequest(f"Prompt variable '{name}' must be one of {spec['enum']}.", param=param)
        limit = spec.get("max_length")
        if limit is not None and isinstance(value, str | list) and len(value) > int(limit):
            raise InvalidRequest(f"Prompt variable '{name}' is longer than {limit}.", param=param)
        out[name] = value
    return out


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Template:
    """Compiling costs ~1 ms; versions are immutable, so each template is compiled once."""
    return _ENV.from_string(source)


def render(source: str, values: Mapping[str, Any], max_chars: int) -> str:
    """Render in the sandbox; anything refused or failing (an undefined variable, an unsafe attribute, a
    bound exceeded) is a 400."""
    try:
        template = _compiled(source)
        parts: list[str] = []
        size = 0
        for piece in template.generate(values):
            size += len(piece)
            if size > max_chars:
                raise InvalidRequest(
                    f"The rendered prompt is longer than {max_chars} characters.", param="prompt.variables"
                )
            parts.append(piece)
        return "".join(parts)
    except InvalidRequest:
        raise
    except TemplateError as exc:
        raise InvalidRequest(
            f"The prompt could not be rendered: {exc.message or exc}", param="prompt"
        ) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise InvalidRequest(f"The prompt could not be rendered: {exc}", param="prompt") from None
