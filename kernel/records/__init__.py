"""Records: the generated CRUD API over collection tables, with the query contract."""
