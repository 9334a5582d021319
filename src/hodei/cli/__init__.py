"""The ``hodei`` command line: run jobs, serve the control plane, inspect jobs and workers."""
