"""Reverse-engineering trained runs: pure functions of weights, activations and metrics (no plotting)."""
