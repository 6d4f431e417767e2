"""The HTTP API: thin FastAPI routers over kernel services."""
