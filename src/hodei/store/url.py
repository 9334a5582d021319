"""Which store ``HODEI_DATABASE_URL`` names, and where the default SQLite file lives.

Accepted forms: ``sqlite:///absolute/path.db``, ``sqlite://relative/path.db``,
``sqlite://:memory:`` (SQLite without a file) and ``memory://`` (the in-memory store).
Unset means a SQLite file under the user's data directory.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

from hodei.store.base import Store
from hodei.store.memory import MemoryStore
from hodei.store.sqlite import SqliteStore

ACCEPTED_URLS = (
    "sqlite:///ABSOLUTE/PATH.db, sqlite://RELATIVE/PATH.db, sqlite://:memory: or memory://"
)


def default_database_path() -> Path:
    """``<user data dir>/hodei/hodei.db`` (e.g. ``~/.local/share/hodei/hodei.db``)."""
    return Path(platformdirs.user_data_dir("hodei")) / "hodei.db"


def store_from_url(url: str | None) -> Store:
    """The (unopened) store for ``url``; raises ValueError naming the accepted forms."""
    if url is None:
        return SqliteStore(default_database_path())
    if url == "memory://":
        return MemoryStore()
    scheme, sep, rest = url.partition("://")
    if scheme == "sqlite" and sep and rest:
        return SqliteStore(rest)
    raise ValueError(f"unsupported database URL {url!r}; accepted: {ACCEPTED_URLS}")


def sidecar_directory(url: str | None) -> Path | None:
    """``<database file>.workers``: a directory beside the database file for state that
    must survive with it (the local provider's pid files); None for stores without a
    file. Raises ValueError like :func:`store_from_url`."""
    store_from_url(url)  # the same forms are accepted
    if url is None:
        return Path(f"{default_database_path()}.workers")
    scheme, _, rest = url.partition("://")
    if scheme != "sqlite" or rest == ":memory:":
        return None
    return Path(f"{rest}.workers")
