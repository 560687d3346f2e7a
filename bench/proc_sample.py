"""CPU and context switches of a running process over a window: user and kernel time in cores, and the
voluntary and involuntary context switches of all its threads, per second.

For a server under a benchmark's burst (bench/README.md: the threads' hand-offs beside Probot's event
loop). Linux only: it reads /proc.

    .venv/bin/python bench/proc_sample.py PID --seconds 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime, stime) of the whole process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches summed over the process's threads alive now."""
    voluntary = involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:  # the thread ended meanwhile
            continue
        for line in lines:
            name, _, value = line.partition(":")
            if name == "voluntary_ctxt_switches":
                voluntary += int(value)
            elif name == "nonvoluntary_ctxt_switches":
                involuntary += int(value)
    return voluntary, involuntary


def sample(pid: int, seconds: float) -> dict[str, float]:
    ticks, before = cpu_ticks(pid), switches(pid)
    time.sleep(seconds)
    ticks_after, after = cpu_ticks(pid), switches(pid)
    per_tick = 1 / os.sysconf("SC_CLK_TCK")
    return {
        "user_cores": (ticks_after[0] - ticks[0]) * per_tick / seconds,
        "kernel_cores": (ticks_after[1] - ticks[1]) * per_tick / seconds,
        "voluntary_switches_per_s": (after[0] - before[0]) / seconds,
        "involuntary_switches_per_s": (after[1] - before[1]) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pid", type=int)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    figures = sample(args.pid, args.seconds)
    print(
        f"user {figures['user_cores']:.2f} cores, kernel {figures['kernel_cores']:.2f} cores, "
        f"context switches/s voluntary {figures['voluntary_switches_per_s']:.0f} "
        f"involuntary {figures['involuntary_switches_per_s']:.0f}"
    )


if __name__ == "__main__":
    main()
