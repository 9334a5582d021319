"""The local provider: workers are ``hodei worker`` processes on this machine."""

from hodei.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
