"""Persistence behind a small interface: SQLite by default, in-memory for tests."""

from hodei.store.base import Store, StoreError, TokenKind, TokenRecord
from hodei.store.memory import MemoryStore
from hodei.store.sqlite import SqliteStore
from hodei.store.url import default_database_path, sidecar_directory, store_from_url

__all__ = [
    "MemoryStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "TokenKind",
    "TokenRecord",
    "default_database_path",
    "sidecar_directory",
    "store_from_url",
]
