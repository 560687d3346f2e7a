"""The GitHub App client: JWT and installation tokens, one REST client, typed errors, write pacing."""
