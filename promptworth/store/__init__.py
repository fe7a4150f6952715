"""The store: finished runs in SQLite, keyed by the hash of their configuration."""
