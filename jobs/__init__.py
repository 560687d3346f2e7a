"""Operator jobs: long runs an operator starts from the command line (e.g. the backfill)."""
