"""Storage backends: where file bytes live. ``storage.local`` keeps them on this machine."""
