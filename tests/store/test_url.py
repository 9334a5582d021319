from pathlib import Path

import pytest

from hodei.store import MemoryStore, SqliteStore, default_database_path, store_from_url


def test_default_is_sqlite_under_user_data_dir():
    store = store_from_url(None)
    assert isinstance(store, SqliteStore)
    assert Path(store.path) == default_database_path()
    assert default_database_path().name == "hodei.db"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/hodei.db", "/var/lib/hodei.db"),
        ("sqlite://rel/h.db", "rel/h.db"),
        ("sqlite://:memory:", ":memory:"),
    ],
)
def test_sqlite_urls(url: str, path: str):
    store = store_from_url(url)
    assert isinstance(store, SqliteStore) and store.path == path


def test_memory_url():
    assert isinstance(store_from_url("memory://"), MemoryStore)


@pytest.mark.parametrize("url", ["postgres://x", "sqlite://", "file.db"])
def test_unsupported_url_names_accepted_forms(url: str):
    with pytest.raises(ValueError, match=r"sqlite:///ABSOLUTE/PATH\.db"):
        store_from_url(url)
