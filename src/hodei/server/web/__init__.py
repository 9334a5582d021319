"""The web console and the versioned HTTP API it reads (``/api/v1``).

The console is a static page (``assets/``) that renders what the JSON API returns; the
API serves the same job and worker objects as ``hodei jobs list -o json`` (see
:mod:`hodei.api.shapes`), so anything the page shows can be scripted with curl. Both sit
on the control plane's HTTP port next to ``/metrics`` and the probes.
"""

from hodei.server.web.api import ConsoleApi
from hodei.server.web.routes import add_console
from hodei.server.web.session import Gate

__all__ = ["ConsoleApi", "Gate", "add_console"]
