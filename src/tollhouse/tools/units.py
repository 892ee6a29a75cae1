"""Unit conversion: length, mass, volume, time, speed, area, data and temperature (affine)."""

from __future__ import annotations

from typing import Any

from tollhouse.tools.base import Tool, ToolFailure
from tollhouse.tools.calculator import format_number

# unit → (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    # length (metre)
    "mm": ("length", 1e-3), "cm": ("length", 1e-2), "m": ("length", 1.0), "km": ("length", 1e3),
    "in": ("length", 0.0254), "ft": ("length", 0.3048), "yd": ("length", 0.9144), "mi": ("length", 1609.344),
    "nmi": ("length", 1852.0),
    # mass (kilogram)
    "mg": ("mass", 1e-6), "g": ("mass", 1e-3), "kg": ("mass", 1.0), "t": ("mass", 1e3),
    "oz": ("mass", 0.028349523125), "lb": ("mass", 0.45359237), "st": ("mass", 6.35029318),
    # volume (litre)
    "ml": ("volume", 1e-3), "l": ("volume", 1.0), "m3": ("volume", 1e3), "tsp": ("volume", 0.00492892159375),
    "tbsp": ("volume", 0.01478676478125), "cup": ("volume", 0.2365882365),
    "floz": ("volume", 0.0295735295625),
    "pt": ("volume", 0.473176473), "qt": ("volume", 0.946352946), "gal": ("volume", 3.785411784),
    # time (second)
    "ms": ("time", 1e-3), "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0),
    "day": ("time", 86400.0), "week": ("time", 604800.0),
    # speed (metre per second)
    "m/s": ("speed", 1.0), "km/h": ("speed", 1 / 3.6), "mph": ("speed", 0.44704),
    "kn": ("speed", 1852 / 3600),
    # area (square metre)
    "m2": ("area", 1.0), "km2": ("area", 1e6), "ha": ("area", 1e4), "acre": ("area", 4046.8564224),
    "ft2": ("area", 0.09290304),
    # data (byte)
    "b": ("data", 1.0), "kb": ("data", 1e3), "mb": ("data", 1e6), "gb": ("data", 1e9), "tb": ("data", 1e12),
    "kib": ("data", 1024.0), "mib": ("data", 1024.0**2), "gib": ("data", 1024.0**3),
    "tib": ("data", 1024.0**4),
}  # fmt: skip
_TEMPERATURE = ("c", "f", "k")


def convert(value: float, src: str, dst: str) -> float:
    a, b = src.strip().lower(), dst.strip().lower()
    if a in _TEMPERATURE and b in _TEMPERATURE:
        kelvin = {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[a]
        return {"c": kelvin - 273.15, "f": (kelvin - 273.15) * 9 / 5 + 32, "k": kelvin}[b]
    ua, ub = _UNITS.get(a), _UNITS.get(b)
    for name, unit in ((src, ua), (dst, ub)):
        if unit is None and name.strip().lower() not in _TEMPERATURE:
            raise ToolFailure(
                "invalid_arguments", f"unknown unit '{name}'; known: {', '.join(sorted(_UNITS))}, C, F, K"
            )
    if ua is None or ub is None or ua[0] != ub[0]:
        raise ToolFailure("invalid_arguments", f"cannot convert {src} to {dst}: different kinds of quantity")
    return value * ua[1] / ub[1]


async def _run(args: dict[str, Any]) -> str:
    out = convert(float(args["value"]), args["from_unit"], args["to_unit"])
    return f"{format_number(round(out, 10))} {args['to_unit']}"


def tool() -> Tool:
    return Tool(
        "convert_units",
        "Convert a quantity between units of length, mass, volume, time, speed, area, data or temperature.",
        {
            "type": "object",
            "properties": {
                "value": {"type": "number"},
                "from_unit": {"type": "string", "maxLength": 16, "description": "e.g. km, lb, F, GiB, mph"},
                "to_unit": {"type": "string", "maxLength": 16},
            },
            "required": ["value", "from_unit", "to_unit"],
            "additionalProperties": False,
        },
        _run,
        timeout_s=2.0,
        concurrency=16,
    )
