"""ENV_FILE is the one settings file: the `flask` command never runs on a stray ./.env instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def flask(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`flask --app app ...` started in `cwd` with the tests' own environment plus `env`."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "WEBHOOK_SECRET")}
    environment.update(PYTHONPATH=str(ROOT), LOG_FORMAT="text", **env)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def two_env_files(folder: Path) -> Path:
    """A stray ./.env in the working directory and the file ENV_FILE names, each with its own database."""
    (folder / ".env").write_text(f"WEBHOOK_SECRET=stray\nDATABASE_URL=sqlite:///{folder / 'stray.sqlite3'}\n")
    chosen = folder / "chosen.env"
    chosen.write_text(f"WEBHOOK_SECRET=chosen\nDATABASE_URL=sqlite:///{folder / 'chosen.sqlite3'}\n")
    return chosen


def test_flask_commands_read_only_env_file_even_beside_a_stray_dotenv(tmp_path: Path) -> None:
    chosen = two_env_files(tmp_path)
    result = flask(tmp_path, "db", "upgrade", ENV_FILE=str(chosen), FLASK_SKIP_DOTENV="1")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "chosen.sqlite3").exists() and not (tmp_path / "stray.sqlite3").exists()


def test_flask_refuses_to_mix_a_stray_dotenv_with_env_file_and_says_how_to_fix_it(tmp_path: Path) -> None:
    chosen = two_env_files(tmp_path)
    result = flask(tmp_path, "db", "upgrade", ENV_FILE=str(chosen), FLASK_SKIP_DOTENV="")
    assert result.returncode != 0
    assert "FLASK_SKIP_DOTENV=1" in result.stderr and str(tmp_path / ".env") in result.stderr
    assert not (tmp_path / "chosen.sqlite3").exists() and not (tmp_path / "stray.sqlite3").exists()


def test_dotenv_is_read_when_it_is_the_env_file(tmp_path: Path) -> None:
    chosen = two_env_files(tmp_path)
    chosen.unlink()
    result = flask(tmp_path, "db", "upgrade", ENV_FILE="", FLASK_SKIP_DOTENV="")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "stray.sqlite3").exists()


def test_the_tests_own_commands_ignore_a_dotenv_in_the_checkout(tmp_path: Path) -> None:
    """What conftest sets for every test and the commands they start: a .env in the checkout changes nothing."""
    (tmp_path / ".env").write_text("WEBHOOK_SECRET=stray\nWEBHOOK_PATH=/stray-hook\n")
    database = f"sqlite:///{tmp_path / 'test.sqlite3'}"
    result = flask(tmp_path, "routes", DATABASE_URL=database, WEBHOOK_SECRET="t")
    assert result.returncode == 0, result.stderr
    assert "/api/github/webhooks" in result.stdout and "/stray-hook" not in result.stdout
