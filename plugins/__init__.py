"""Tessera's built-in plugins. Each is loaded through its entry point, like any third-party
plugin; none imports another (import-linter checks it)."""
