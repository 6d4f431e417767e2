"""The plugin ``field_types.relation``: many-to-one links between records (issue 16).

See :mod:`plugins.field_types.relation.field_type` for the type and
:mod:`plugins.field_types.relation.references` for how its options follow renames.
"""
