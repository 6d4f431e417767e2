"""Database access: the catalog tables, the engine and pool, migrations, embedded server."""
