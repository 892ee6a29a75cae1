"""Date/time and unit built-ins, and the registry."""

from __future__ import annotations

import datetime as dt

import jsonschema  # type: ignore[import-untyped]
import pytest

from tollhouse.tools import clock, units
from tollhouse.tools.base import Scope, Tool, ToolFailure
from tollhouse.tools.registry import ToolRegistry
from tollhouse.types import Principal


async def test_current_time_in_a_zone() -> None:
    fixed = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
    tool = clock.current_time(lambda: fixed)
    assert await tool.run({"timezone": "Europe/Paris"}) == "2026-07-01T14:00:00+02:00 (Wednesday, CEST)"
    assert (await tool.run({})).startswith("2026-07-01T12:00:00+00:00")


async def test_convert_time_across_a_dst_boundary() -> None:
    tool = clock.convert_time()
    out = await tool.run(
        {"time": "2026-03-29T09:30", "from_timezone": "America/New_York", "to_timezone": "Asia/Tokyo"}
    )
    assert out.startswith("2026-03-29T22:30:00+09:00")


async def test_unknown_zone_and_bad_time() -> None:
    with pytest.raises(ToolFailure, match="unknown time zone"):
        await clock.convert_time().run(
            {"time": "2026-01-01T00:00", "from_timezone": "Mars/Base", "to_timezone": "UTC"}
        )
    with pytest.raises(ToolFailure, match="ISO 8601"):
        await clock.convert_time().run({"time": "tomorrow", "from_timezone": "UTC", "to_timezone": "UTC"})


@pytest.mark.parametrize(
    ("value", "src", "dst", "out"),
    [
        (5, "km", "m", 5000),
        (212, "F", "C", 100),
        (1, "GiB", "MB", 1073.741824),
        (10, "mph", "km/h", 16.09344),
    ],
)
def test_unit_conversion(value: float, src: str, dst: str, out: float) -> None:
    assert units.convert(value, src, dst) == pytest.approx(out)


def test_unit_errors() -> None:
    with pytest.raises(ToolFailure, match="different kinds"):
        units.convert(1, "kg", "m")
    with pytest.raises(ToolFailure, match="unknown unit 'parsec'"):
        units.convert(1, "parsec", "m")


def test_schema_validation_names_the_problem() -> None:
    tool = units.tool()
    tool.check({"value": 1, "from_unit": "m", "to_unit": "km"})
    with pytest.raises(ToolFailure) as e:
        tool.check({"value": "one", "from_unit": "m", "to_unit": "km"})
    assert e.value.code == "invalid_arguments" and e.value.message.startswith("value:")
    with pytest.raises(ToolFailure, match="JSON object"):
        tool.check([1])


def test_registry_names_scopes_and_sources() -> None:
    async def run(args: dict[str, object]) -> str:
        return "x"

    reg = ToolRegistry()
    reg.register(Tool("retrieve", "Search documents.", {"type": "object"}, run, source="rag"))
    with pytest.raises(ValueError, match="already registered by rag"):
        reg.register(Tool("retrieve", "Other.", {"type": "object"}, run, source="mcp:x"))
    reg.register(
        Tool("a", "A.", {"type": "object"}, run, scope=Scope(teams=frozenset({"ops"})), source="mcp:s")
    )
    assert reg.names() == ["a", "retrieve"]
    assert reg.permitted("a", Principal(team="ops")) and not reg.permitted("a", Principal(key_id="k"))
    reg.replace("mcp:s", [])
    assert reg.names() == ["retrieve"]
    with pytest.raises(jsonschema.exceptions.SchemaError):  # an invalid schema is refused at registration
        Tool("bad", "Bad.", {"type": "no-such-type"}, run)


def test_bad_tool_configuration_is_refused_at_start() -> None:
    from tollhouse.config.base import ConfigError
    from tollhouse.config.tools import HttpToolConfig, ToolsSettings
    from tollhouse.tools.build import Tools

    with pytest.raises(ConfigError, match="not in tools"):
        Tools(ToolsSettings(http=[HttpToolConfig(name="x", description="X", url="http://10.0.0.1/")]))
    with pytest.raises(ConfigError, match="builtin_scope"):
        Tools(ToolsSettings(builtins=["calculator"], builtin_scope={"convert_time": {"teams": ["a"]}}))
    bad = HttpToolConfig(name="y", description="Y", url="http://a.example/", parameters={"type": 3})
    with pytest.raises(ConfigError, match="tools: "):
        Tools(ToolsSettings(http_allowed_hosts=["a.example"], http=[bad]))
    assert Tools(ToolsSettings()).registry.names() == [
        "calculator",
        "convert_time",
        "convert_units",
        "current_time",
    ]
