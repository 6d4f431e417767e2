"""Field-type plugins: ``field_types.core`` (scalars) and later ``relation`` and ``file``."""
