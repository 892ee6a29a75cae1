"""Renders docs/CONFIGURATION.md from the settings model, so the reference can never drift from the code.

``tollhouse config-docs`` prints it; a test fails when the committed file differs.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tollhouse.settings import (
    AnthropicModel,
    AutoRouterConfig,
    EncoderModel,
    FallbackRule,
    GroupConfig,
    GroupMember,
    LlamaCppModel,
    MockModel,
    OpenAIModel,
    Pricing,
    Settings,
    Timeouts,
)

HEADER = """# Configuration reference

Generated from the settings model (`src/tollhouse/settings.py`, `src/tollhouse/config/`) by
`tollhouse config-docs > docs/CONFIGURATION.md`; a test keeps the two in step.

Layers, lowest to highest: defaults → YAML file (`--config PATH`, else `TOLLHOUSE_CONFIG`, else
`./tollhouse.yaml`) → `.env` → environment variables. Environment names are `TOLLHOUSE_` + the path in
upper case with `__` between levels, e.g. `TOLLHOUSE_SERVER__PORT=9000`; lists (such as `models`) take
JSON. An invalid value stops start-up with a message naming the field and the value
(`tollhouse check-config`). Secrets are never values in this file: name the environment variable that
holds them (`*_env`).

Vendor extras: a request field OpenAI does not define (`top_k`, `repetition_penalty`,
`chat_template_kwargs`, …; the openai SDK sends `extra_body` as such top-level fields) reaches a
deployment only when its `extra_params` lists the name; otherwise it is logged (name only) and dropped.
Extras are part of the response-cache key.
"""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(section)"
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    return f"`{json.dumps(value, default=_jsonable)}`"


def _jsonable(value: Any) -> Any:
    """Defaults that hold models (lists of rule entries, …) are shown as their plain data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot show a default of type {type(value).__name__}")


def _type(field: FieldInfo) -> str:
    ann = field.annotation
    if "discriminator='provider'" in str(ann):
        return "list of model entries"
    text = getattr(ann, "__name__", None) if not get_args(ann) else None
    text = text or str(ann).replace("typing.", "").replace("tollhouse.settings.", "")
    return text.replace("|", "\\|")


def _table(model: type[BaseModel], prefix: str) -> list[str]:
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel) and ann not in (Pricing, Timeouts):
            nested.append((f"{prefix}{name}", ann))
            continue
        rows.append(f"| `{prefix}{name}` | {_type(field)} | {_default(field)} | {field.description or ''} |")
    out = rows if len(rows) > 2 else []
    for path, sub in nested:
        out += ["", f"### `{path}`", "", (sub.__doc__ or "").strip(), "", *_table(sub, f"{path}.")]
    return out


def render() -> str:
    lines = [HEADER, "## Sections", ""]
    lines += _table(Settings, "")
    lines += [
        "",
        "## Models (`models:`)",
        "",
        "Each entry is one deployment; `provider` picks the kind. The embedded models `local` and",
        "`local-embed` are added unless `embedded.*` turns them off or an entry takes their name.",
    ]
    for kind in (OpenAIModel, AnthropicModel, LlamaCppModel, MockModel, EncoderModel):
        provider = kind.model_fields["provider"].default
        lines += ["", f"### `provider: {provider}`", "", (kind.__doc__ or "").strip(), ""]
        lines += _table(kind, "")
    for sub in (Pricing, Timeouts):
        lines += ["", f"### `{sub.__name__.lower()}`", "", (sub.__doc__ or "").strip(), ""]
        lines += _table(sub, f"{sub.__name__.lower()}.")
    lines += ["", "## Routing entries", ""]
    for path, entry in (
        ("routing.groups[]", GroupConfig),
        ("routing.groups[].deployments[]", GroupMember),
        ("routing.groups[].fallbacks[]", FallbackRule),
        ("routing.auto[]", AutoRouterConfig),
    ):
        lines += ["", f"### `{path}`", "", (entry.__doc__ or "").strip(), ""]
        lines += _table(entry, "")
    return "\n".join(lines).rstrip() + "\n"
