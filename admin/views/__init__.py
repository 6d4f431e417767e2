"""The admin's pages, one module per screen; each exposes ``router``."""
