"""Central's database layer: one SQLAlchemy Core engine for SQLite or PostgreSQL, the table
definitions every part of central queries, and the Alembic migrations that create and
upgrade them. Other parts of central define their own tables against :data:`metadata` and
get connections from :class:`~central.db.engine.Database`; no module outside ``central/db``
opens a database connection by itself."""
