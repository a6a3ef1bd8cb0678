"""A synthetic credit-risk classifier to show Driftline working: see `credit`."""
