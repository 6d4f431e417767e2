"""The plugin ``views.core``: saved views, versioned read-only query endpoints.

A view is a stored query definition (base collection, projection, filters, sort, at most
one join through a relation field, typed parameters, limits). Every change is a new
version; one version is active. ``GET /api/projects/{p}/views/{v}`` compiles the active
version to SQLAlchemy (identifiers from the catalog, values bound) and runs it as the
caller, with the records list policies of every collection involved.
"""
