"""Tollhouse: a self-hosted, OpenAI-compatible LLM gateway."""

from tollhouse.errors import TollhouseError
from tollhouse.settings import ConfigError, Settings, load_settings
from tollhouse.version import __version__

__all__ = ["ConfigError", "Settings", "TollhouseError", "__version__", "create_app", "load_settings"]


def __getattr__(name: str) -> object:
    # create_app pulls in FastAPI; keep `import tollhouse` light for the CLI's fast paths.
    if name == "create_app":
        from tollhouse.app import create_app

        return create_app
    raise AttributeError(name)
