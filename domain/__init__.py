"""Pure domain values, below storage: contribution kinds and the builders that make them from payloads."""
