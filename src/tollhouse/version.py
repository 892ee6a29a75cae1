"""The package version, in step with pyproject.toml's."""

__version__ = "0.1.0"
