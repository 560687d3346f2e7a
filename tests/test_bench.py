"""The delivery-mix benchmark keeps running and keeps counting GitHub calls (issue 14 measures with it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, database_url_for
from webhooks.dispatch import FINISHED_BATCH_TTL_SECONDS


def test_delivery_mix_prints_calls_per_kind_and_none_for_unhandled_events(tmp_path: Path) -> None:
    database_url = database_url_for(tmp_path)
    command = [sys.executable, str(ROOT / "bench" / "delivery_mix.py"), "--deliveries", "20", "--mode", "embedded"]
    if database_url.startswith("postgres"):
        command += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True).stdout

    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 7:
            rows[cells[0]] = cells
    header = rows.pop("delivery kind")
    assert header[1:4] == ["deliveries", "GitHub calls/delivery", "of which not 304"]
    assert header[4:6] == ["CPU ms/delivery", "servers' CPU ms/delivery"]
    for unhandled in ("check_run", "check_suite", "status"):
        assert rows[unhandled][2] == "0.00", rows[unhandled]
    greeting = rows["newcomer's first issue (greeting)"]
    assert "POST issues/create-comment 201 1.00" in greeting[6]  # every newcomer greeted once
    assert "busy-repository mix" in rows
    assert "contract violations at the fake           | 0" in out
    assert "acks/s, 16 connections (mix)" in out and "greetings/s end to end" in out


def test_github_call_benchmark_measures_both_paths() -> None:
    """`bench/github_call.py` (the transport's figure in bench/README.md) still runs both ways."""
    command = [sys.executable, str(ROOT / "bench" / "github_call.py"), "--calls", "20", "--rounds", "1"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == {"transport", "requests"}, out
    assert all(float(line.split()[1]) > 0 for line in lines.values()), out


def test_person_history_benchmark_counts_both_ways() -> None:
    """`bench/person_history.py` (the capped count's figure in bench/README.md) still runs both ways."""
    command = [sys.executable, str(ROOT / "bench" / "person_history.py"), "--sizes", "10,50", "--counts", "5"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [row[0] for row in rows] == ["10", "50"], out
    assert all(float(value) > 0 for row in rows for value in row[1:]), out


def test_proc_sample_reads_a_busy_process() -> None:
    """`bench/proc_sample.py` (the context-switch figures in bench/README.md) sees a process spinning."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        command = [sys.executable, str(ROOT / "bench" / "proc_sample.py"), str(busy.pid), "--seconds", "0.5"]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    finally:
        busy.kill()
        busy.wait()
    user = float(out.split("user ", 1)[1].split(" cores", 1)[0])
    assert user > 0.2, out  # a spinning process uses a good part of a core, even beside other tests
    assert "context switches/s voluntary" in out, out


def test_intake_models_answers_on_both_models() -> None:
    """`bench/intake_models.py` (the threads beside the event loop in bench/README.md) runs both servers."""
    command = [sys.executable, str(ROOT / "bench" / "intake_models.py"), "--deliveries", "100"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=True).stdout
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert "{202: 100}" in rows["threads"] and "{202: 100}" in rows["event-loop"], out


def test_rq_job_benchmark_runs_both_ways(redis_url: str) -> None:
    """`bench/rq_job.py` (the batch job's figure in bench/README.md) still times a job deleted and one kept."""
    command = [sys.executable, str(ROOT / "bench" / "rq_job.py"), "--redis-url", redis_url, "--jobs", "20"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [row[0] for row in rows] == ["0", str(FINISHED_BATCH_TTL_SECONDS)], out
    assert all(float(value) > 0 for row in rows for value in row[1:]), out


def test_live_times_make_each_contribution_add_to_the_leaderboard_windows_as_in_a_running_app() -> None:
    """The recorded examples are dated 2019 and a benchmark's run ends before the app's task moves the windows
    to today: a comment then writes none of its ten window rows. `--live` measures what a running app does."""

    def window_rows(*live: str) -> int:
        command = [sys.executable, str(ROOT / "bench" / "profile_delivery.py"), "--kind", "comment"]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        run = subprocess.run(
            [*command, "--deliveries", "5", *live], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stderr[-2000:]
        [line] = [line for line in run.stdout.splitlines() if "leaderboard window rows:" in line]
        return int(line.rsplit(":", 1)[1])

    assert window_rows() == 0
    assert window_rows("--live") >= 10, "a comment by someone adds to 5 windows of the repository and of its owner"
