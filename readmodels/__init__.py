"""Read models: what the pages and the APIs show, computed from the ledger and the stores."""
