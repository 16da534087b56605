"""Rollout records of a local mesh, in its state directory: the controller's ``StateStore``
(:mod:`canarymesh.ports`), the inbox of manual commands, and the history of past rollouts.

Written by the canary controller after every decision, read by ``canarymesh rollout get``,
``history`` and ``list``; ``rollout promote|abort|pause|resume`` drop a command here for the
controller to take. Layout under ``<state_dir>/rollouts/<namespace>/``:

* ``<name>.json``: the current record, replaced atomically (write a temporary file, fsync,
  rename), so a controller killed at any moment leaves either the old or the new record and
  resumes at the same step.
* ``<name>.history.jsonl``: one line per earlier rollout of that Canary, appended when a new
  rollout replaces the record.
* ``<name>.command``: the pending manual command (the last one sent wins).

Keys are ``namespace/name``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from canarymesh.errors import ConfigError

__all__ = ["RolloutStore"]


class RolloutStore:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "rollouts"

    # --- StateStore ------------------------------------------------------------------------

    def load(self, name: str) -> Mapping[str, Any] | None:
        path = self._path(name, ".json")
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            loaded = json.loads(text)
        except ValueError as err:
            raise ConfigError(f"rollout record {path} is not JSON: {err}") from None
        return dict(loaded) if isinstance(loaded, dict) else None

    def save(self, name: str, state: Mapping[str, Any]) -> None:
        path = self._path(name, ".json")
        previous = self.load(name)
        if previous is not None and previous.get("rolloutId") != state.get("rolloutId"):
            with self._path(name, ".history.jsonl").open("a") as handle:
                handle.write(json.dumps(previous, sort_keys=True) + "\n")
        _write_atomic(path, json.dumps(dict(state), indent=1, sort_keys=True))

    # --- history and listing ---------------------------------------------------------------

    def history(self, name: str) -> list[dict[str, Any]]:
        """Earlier records of ``name``, oldest first, then the current one."""
        records = []
        path = self._path(name, ".history.jsonl")
        if path.exists():
            records = [json.loads(line) for line in path.read_text().splitlines() if line]
        current = self.load(name)
        return [*records, *([dict(current)] if current is not None else [])]

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            f"{ns.name}/{path.name.removesuffix('.json')}"
            for ns in self.root.iterdir()
            if ns.is_dir()
            for path in ns.glob("*.json")
        )

    # --- manual commands -------------------------------------------------------------------

    def send_command(self, name: str, command: str) -> None:
        _write_atomic(self._path(name, ".command"), command)

    def take_command(self, name: str) -> str | None:
        path = self._path(name, ".command")
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return None
        path.unlink(missing_ok=True)
        return text or None

    def _path(self, name: str, suffix: str) -> Path:
        namespace, _, short = name.partition("/")
        if not short or "/" in short or namespace in ("", ".", ".."):
            raise ConfigError(f"a rollout key is namespace/name, not {name!r}")
        folder = self.root / namespace
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{short}{suffix}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
