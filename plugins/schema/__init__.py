"""Schema-operation plugins: ``schema.core`` (create, add field, drop, policies) and
``schema.evolution`` (renames, soft drops, type changes)."""
