"""Small utilities every layer may use: sizes, polling, downloads (standard library and thin wrappers)."""
