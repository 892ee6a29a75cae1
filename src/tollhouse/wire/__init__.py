"""Pure converters between wire dialects (plain dicts) and the internal types. No I/O."""
