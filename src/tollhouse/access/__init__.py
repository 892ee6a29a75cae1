"""Access control: API keys and their authentication, rate limits, budgets, emergency mode, budget alerts."""
