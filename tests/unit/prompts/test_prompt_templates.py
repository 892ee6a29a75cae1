"""Sandboxed templates: escapes to internals, files and imports are refused; variables are checked against the
version's schema with a 400 naming the variable; output is bounded."""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.errors import InvalidRequest
from tollhouse.prompts.drafts import draft_version
from tollhouse.prompts.template import bind, check_template, render

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ x.__class__ }}",
    "{{ x|attr('__class__') }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{% extends '/etc/passwd' %}",
    "{{ config.items() }}",
    "{{ ''.join.__self__ }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_refused_at_render(source: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        render(source, {"x": 1}, 10_000)
    assert err.value.status == 400 and err.value.param == "prompt"


@pytest.mark.parametrize(
    "source", ["{{ x.__class__ }}", "{{ x['__class__'] }}", "{% include 'a' %}", "{% from 'a' import b %}"]
)
def test_escapes_are_refused_at_push(source: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        check_template(source, "messages.0.content")
    assert err.value.param == "messages.0.content"


def test_a_broken_template_is_refused_at_push_naming_the_message() -> None:
    body = {"messages": [{"role": "system", "content": "ok"}, {"role": "user", "content": "{{ x "}]}
    with pytest.raises(InvalidRequest) as err:
        draft_version("p", body, None)
    assert err.value.param == "messages.1.content"


def test_output_and_repetition_are_bounded() -> None:
    with pytest.raises(InvalidRequest, match="longer than 100"):
        render("{% for i in range(1000) %}abc{% endfor %}", {}, 100)
    with pytest.raises(InvalidRequest):
        render("{{ 'a' * 10**9 }}", {}, 10**9)
    with pytest.raises(InvalidRequest):
        render("{{ 2 ** 100000 }}", {}, 10**9)
    with pytest.raises(InvalidRequest, match="Range too big"):
        render("{% for i in range(10**9) %}{% endfor %}", {}, 100)


def test_rendering_uses_the_variables() -> None:
    out = render(
        "Hello {{ name }}, you have {{ items|length }} items{% if vip %} (VIP){% endif %}.",
        {"name": "Ada", "items": [1, 2], "vip": True},
        1000,
    )
    assert out == "Hello Ada, you have 2 items (VIP)."
    # Values are data, never template code.
    assert render("{{ q }}", {"q": "{{ 7 * 7 }}"}, 1000) == "{{ 7 * 7 }}"


SCHEMA: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "max_length": 10},
    "count": {"type": "integer"},
    "tone": {"type": "string", "enum": ["formal", "casual"], "default": "formal"},
    "extra": {"type": "string", "required": False},
}


@pytest.mark.parametrize(
    ("given", "variable", "words"),
    [
        ({"count": 1}, "name", "Missing"),
        ({"name": 5, "count": 1}, "name", "type string"),
        ({"name": "a", "count": "1"}, "count", "type integer"),
        ({"name": "a", "count": True}, "count", "type integer"),
        ({"name": "a", "count": 1, "tone": "rude"}, "tone", "one of"),
        ({"name": "a" * 11, "count": 1}, "name", "longer than 10"),
        ({"name": "a", "count": 1, "nope": 1}, "nope", "Unknown"),
    ],
)
def test_bad_variables_are_a_400_naming_the_variable(
    given: dict[str, object], variable: str, words: str
) -> None:
    with pytest.raises(InvalidRequest) as err:
        bind(SCHEMA, given)
    assert err.value.status == 400
    assert err.value.param == f"prompt.variables.{variable}"
    assert variable in err.value.message and words in err.value.message


def test_defaults_fill_in_and_optional_ones_may_be_absent() -> None:
    assert bind(SCHEMA, {"name": "a", "count": 2}) == {"name": "a", "count": 2, "tone": "formal"}


def test_without_a_schema_an_undefined_variable_is_named() -> None:
    with pytest.raises(InvalidRequest, match="'who' is undefined"):
        render("hi {{ who }}", bind({}, {}), 1000)
