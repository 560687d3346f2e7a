"""The app's own processes as an operator starts them (the Procfile's, scripts/serve's), for the tests that
drive real servers: each in its own process group, configured only through environment variables, logging
to a file the test prints when it fails."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.conftest import APP_ID, INSTALLATION_ID, REPO, ROOT, SECRET, TEST_BEHAVIOURS
from tests.support.fake_github import FakeGitHub


class Process:
    """One real subprocess in its own process group (a server's workers, RQ's scheduler), logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path):
        self.name = name
        self.log_path = logs / f"{name}.log"
        with self.log_path.open("wb") as out:
            self.popen = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """What a machine or container dying does: no warning, nothing finished."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (servers and RQ finish the request or job in hand), then SIGKILL after `grace`."""
        if self.popen.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # a server's worker or RQ's scheduler left behind
            os.killpg(self.pid, signal.SIGKILL)

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), f"{self.name} exited ({self.popen.returncode}):\n{self.tail()}"
            if ready():
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not {what} within {timeout} s:\n{self.tail()}")

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def log_entries(self) -> list[dict[str, Any]]:
        """The app's JSON log lines (the servers' and RQ's own lines are plain text)."""
        entries = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
        return entries


def procfile() -> dict[str, str]:
    """The Procfile's commands by name (`web`, `worker`, `release`), as a process manager reads them."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name: command.strip() for name, command in (line.split(":", 1) for line in lines if line)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def operator_env(database_url: str, github_url: str, private_key: str) -> dict[str, str]:
    """Every setting as an environment variable (README "Configuration"), nothing from this process."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if name in os.environ}
    env.update(
        APP_ID=str(APP_ID),
        PRIVATE_KEY=private_key,
        WEBHOOK_SECRET=SECRET,
        DATABASE_URL=database_url,
        GITHUB_API_URL=github_url,
        GITHUB_WRITE_INTERVAL="0",
        ENGAGE_BEHAVIOURS=",".join(TEST_BEHAVIOURS),
        ENV_FILE="/nonexistent/.env",
        FLASK_SKIP_DOTENV="1",  # only ENV_FILE, as the systemd units run it (a .env may sit in the checkout)
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        JOB_TIMEOUT_SECONDS="10",
        SWEEP_INTERVAL_SECONDS="2",
        SWEEP_GRACE_SECONDS="2",
    )
    return env


def fake_for_processes(fake: FakeGitHub) -> FakeGitHub:
    """The session's fake GitHub, reset once for a module of long-lived processes (they cache its tokens):
    the test repository, installed."""
    fake.reset()
    fake.add_repo(REPO, default_branch="master")
    fake.add_installation(INSTALLATION_ID, "Codertocat", [REPO])
    return fake
