"""Telemetry: structured logging now; metrics and tracing plug in here."""
