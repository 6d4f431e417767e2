"""The platform catalog: projects, collections, fields, aliases and policies."""
