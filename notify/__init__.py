"""Messages to the community's chat and forum: one `Notifier` over small per-platform adapters."""
