"""The operators' dashboard, served by the gateway at ``/ui`` (docs/DASHBOARD.md, ADR 0022)."""
