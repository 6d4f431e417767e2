"""Tessera's benchmark: every hot path against the raw-SQL floor, in one run.

``python -m bench`` (or ``make bench``) provisions a fresh database, starts Tessera, seeds
one collection, then drives each operation with wrk and the same SQL with asyncpg directly.
See bench/README.md for how to run it, read it and profile it.
"""
