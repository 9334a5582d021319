"""Providers create, watch and delete workers. See :mod:`hodei.providers.base` for the interface."""
