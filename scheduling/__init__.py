"""Scheduled work: tasks registered with an interval or a cron expression, run once per period."""
