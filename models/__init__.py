"""Candidate generation, ranking, guideline rules and the final code set."""
