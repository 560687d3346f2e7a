"""Webhook intake: verify, store, route and dispatch GitHub deliveries."""
