"""The embedded sentence encoder (numpy all-MiniLM-L6-v2); see ``encoder``."""
