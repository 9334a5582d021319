"""Pure domain types: jobs, states, quantities, failure reasons. No I/O here."""
