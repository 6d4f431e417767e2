"""Operator plugins: ``operators.core`` (eq ne in contains gt lt gte lte between is_null)."""
