from pathlib import Path

import pytest

from hodei.store import (
    MemoryStore,
    SqliteStore,
    default_database_path,
    sidecar_directory,
    store_from_url,
)


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


@pytest.mark.parametrize(
    ("url", "directory"),
    [
        ("sqlite:///var/lib/hodei.db", Path("/var/lib/hodei.db.workers")),
        ("sqlite://rel/h.db", Path("rel/h.db.workers")),
        ("sqlite://:memory:", None),
        ("memory://", None),
    ],
)
def test_sidecar_directory_lives_beside_the_database_file(url: str, directory: Path | None) -> None:
    assert sidecar_directory(url) == directory


def test_sidecar_directory_of_the_default_database() -> None:
    assert sidecar_directory(None) == Path(f"{default_database_path()}.workers")
