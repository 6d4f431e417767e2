"""The query contract shared by collections and views: limit, cursor, sort, filters."""
