"""The Alembic revision history: `flaggery db upgrade` runs it, and `alembic` in a checkout."""
