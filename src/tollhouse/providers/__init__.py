"""Providers: one module per backend kind behind the ``Provider`` protocol in ``base``."""
