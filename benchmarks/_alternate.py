"""The way every throughput benchmark here runs its contenders: each in a fresh process of its own
(so process-wide settings such as genmodels' allocator tuning help only their own), the contenders
alternating round by round so all see the same machine state."""

from __future__ import annotations

import json
import subprocess
import sys


def run_alternating(commands: dict, repeats: int) -> dict:
    """Run each command (key -> argv) `repeats` times, alternating; each prints one JSON object on its
    last line of stdout. Returns key -> the list of those objects. A failing worker stops the run with
    its own error output shown."""
    runs: dict = {key: [] for key in commands}
    for _ in range(repeats):
        for key, cmd in commands.items():
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"worker {key!r} failed (exit {done.returncode}):\n{done.stderr.strip()}")
            runs[key].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs
