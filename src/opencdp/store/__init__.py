"""The store: every SQL statement of OpenCDP, for SQLite and PostgreSQL alike."""
