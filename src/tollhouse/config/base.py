"""Shared base of every settings section and the start-up error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """Start-up refused: the configuration is invalid. The message names each bad field and value."""


class Strict(BaseModel):
    # No infinities or NaN anywhere in the configuration: every bound is finite, and an `inf` budget or
    # price would overflow the integer counters it is converted to.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)
