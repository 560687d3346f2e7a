"""Operator commands: `flask --app app db upgrade | replay | deliveries | sweep | worker | backfill | doctor | tasks |
notify | digest | identities | config | proxy`, one module per group."""

from __future__ import annotations

from flask import Flask

from cli.backfill import backfill_command
from cli.config import config_cli
from cli.deliveries import db_cli, deliveries_cli, replay, sweep_command, worker_command
from cli.digest import digest_command
from cli.doctor import doctor_command
from cli.identities import identities_cli
from cli.proxy import proxy_command
from cli.tasks import notify_cli, tasks_cli


def init_app(app: Flask) -> None:
    for command in (
        db_cli,
        deliveries_cli,
        replay,
        sweep_command,
        worker_command,
        backfill_command,
        doctor_command,
        tasks_cli,
        notify_cli,
        digest_command,
        identities_cli,
        config_cli,
        proxy_command,
    ):
        app.cli.add_command(command)
