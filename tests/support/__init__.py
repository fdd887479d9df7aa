"""Shared test doubles and helpers: the one place tests, and the benches, import them from."""
