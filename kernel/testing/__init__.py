"""Contract test classes a plugin's own tests subclass: pass them and the plugin keeps the
kernel's promises (docs/plugins.md, "Testing your transport")."""
