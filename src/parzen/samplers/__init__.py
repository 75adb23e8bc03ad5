"""Samplers: pure functions from (space, history, rng) to new points."""
