"""Pipeline stages: one module per stage, each a Protocol plus the pass-through implementation."""
