"""Alembic's environment for rewardbot: run on the connection, and inside the transaction, that
:func:`bot.store.schema.upgrade_schema` hands it (``config.attributes["connection"]``).

There is no ``alembic.ini`` and no offline (``--sql``) mode: rewardbot migrates its database
itself, at start-up or with ``rewardbot migrate``, never by a separate ``alembic`` command.

Adding a revision:

1. Copy the newest file in ``versions/`` to ``versions/NNNN_what.py`` (the next number), set
   ``revision = "NNNN_what"`` (the file's name) and ``down_revision`` to the copied file's
   ``revision``, and replace the docstring and both functions' bodies (``op.add_column``,
   ``op.create_index``, ``op.execute`` for data, …). Or let Alembic write the empty shape
   (``script.py.mako``), with the previous head as ``down_revision``::

       python -c 'from alembic import command, config; c = config.Config();
       c.set_main_option("script_location", "bot/store/migrations");
       c.set_main_option("file_template", "%%(rev)s");
       command.revision(c, message="What it does", rev_id="NNNN_what")'
2. Write what both databases understand: SQLAlchemy types, ``op`` operations, and plain SQL
   only where it is the same on SQLite and PostgreSQL. Change or drop a column inside
   ``with op.batch_alter_table("table") as batch:``: plain ALTERs on PostgreSQL, a copy of the
   table on SQLite (its only way). With ``PRAGMA foreign_keys=ON``, that copy's ``DROP TABLE``
   fails while other tables' rows point at the table, so such a change needs its own plan.
3. Test it from the previous head, on both databases, with data (``tests/unit/test_migrations.py``).

A released revision never changes: a database that ran it will not run it again.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection


def run_migrations_in_callers_transaction() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "rewardbot runs its migrations itself: start it, or run `rewardbot migrate`"
        )
    context.configure(
        connection=connection,
        # Only for operations Alembic writes itself (autogenerate): batch ones on SQLite.
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    # Already in the caller's transaction, so this neither begins nor commits one: every
    # revision lands, with the version stamp, when the caller commits, or none does.
    with context.begin_transaction():
        context.run_migrations()


run_migrations_in_callers_transaction()
