"""HTTP handlers for resource requests, one module per concern."""
