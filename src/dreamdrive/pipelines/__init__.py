"""Dataset-level jobs in numbered steps: they read datasets, call the stages' pure functions and write results.

The CLI calls these; the stages below them (`scenario`, `conditions`, later `models`)
never import this package.
"""
