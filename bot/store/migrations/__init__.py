"""The schema's migration history, one Alembic revision a file in ``versions/``, the same for
SQLite and PostgreSQL; :func:`bot.store.schema.upgrade_schema` runs it (``env.py`` says how to add
a revision)."""
