"""Routing parts used by the routing stage (``pipeline/routing.py``): error classes and backoff, circuit
breakers (in-process, optionally shared through Redis), deployment-picking strategies, automatic routing."""
