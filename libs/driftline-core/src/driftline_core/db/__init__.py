"""PostgreSQL: an asyncpg pool per service schema, and versioned SQL migrations."""

from .migrations import Migration, apply_migrations, load_migrations
from .pool import Database

__all__ = ["Database", "Migration", "apply_migrations", "load_migrations"]
