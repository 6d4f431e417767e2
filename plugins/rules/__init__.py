"""Validation rules: field rule types, record rules and compound uniqueness (``rules.core``)."""
