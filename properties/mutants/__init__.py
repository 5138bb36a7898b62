"""The seeded-bug catalogue: proof that each engine can fail."""
