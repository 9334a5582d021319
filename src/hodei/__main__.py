"""``python -m hodei``: the same as the ``hodei`` command."""

from hodei.cli.main import main

raise SystemExit(main())
