"""Shared pytest configuration; server fixtures live in tests/fixtures and are registered here."""

pytest_plugins = [
    "tests.fixtures.emulator",
    "tests.fixtures.control_plane",
]
