"""Settings sections, one module per concern; ``tollhouse.settings`` assembles the tree."""
