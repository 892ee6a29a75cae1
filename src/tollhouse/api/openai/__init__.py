"""OpenAI ingress: wire models (``protocol``), routes (``router``) and schema docs (``docs``)."""
