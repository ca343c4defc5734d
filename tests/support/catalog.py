"""Catalog (database schema) helpers."""

from __future__ import annotations


def alembic_head() -> str:
    """The newest catalog migration, so schema tests do not hard-code a revision."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from visualsearch.catalog.store import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()
