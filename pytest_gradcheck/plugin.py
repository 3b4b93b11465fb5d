"""pytest hooks of pytest-gradcheck (filled in by the plugin work)."""
