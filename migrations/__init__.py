"""Alembic revision history, shipped inside the wheel as ``flaggery.migrations``."""
