"""Guardrails: input, output and stream checks run by ``guardrails.chain.GuardrailChain`` (issue 6)."""
