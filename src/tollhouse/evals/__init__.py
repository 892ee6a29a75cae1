"""Evaluation, training and calibration tools for the guardrails and the semantic cache.

Not on the request path: the CLI's ``tollhouse eval …`` commands and the training scripts use them.
"""
