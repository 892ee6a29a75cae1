"""The package version, in step with pyproject.toml's."""

__version__ = "0.2.0"
