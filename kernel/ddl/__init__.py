"""The DDL engine: every schema change is a named operation run through one engine."""
