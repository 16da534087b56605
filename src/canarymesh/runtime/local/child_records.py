"""The records of a supervisor's detached children: what a restarted control plane adopts and
what ``down`` stops after a crash. No asyncio here: the CLI reads it and must start fast."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["load_records", "recorded_children", "start_time"]


def start_time(pid: int) -> int | None:
    """The process' start time (clock ticks since boot): a pid that was reused differs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return int(fields[19])


def recorded_children(path: Path) -> dict[str, int]:
    """The detached children recorded in ``path`` that still run (name -> pid)."""
    alive = {}
    for name, record in load_records(path).items():
        pid = record.get("pid")
        if isinstance(pid, int) and start_time(pid) == record.get("start"):
            alive[name] = pid
    return alive


def load_records(path: Path | None) -> dict[str, dict[str, object]]:
    if path is None:
        return {}
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): dict(v) for k, v in found.items() if isinstance(v, dict)}
