"""What ``canarymesh rollout … --context NAME`` needs of a cluster: the same calls the CLI makes
on the local mesh's rollout store (``load``, ``names``, ``history``, ``send_command``), plus the
Canary's spec and ``start``. Shell; built by :mod:`canarymesh.cli.rollout` from a kubeconfig
context, so the commands print the same views locally and on a cluster.

The user's own credentials act here, not the controller's: ``start`` applies the Canary with the
field manager ``canarymesh-cli``; a command is the annotation ``canarymesh.io/command``, which
the controller takes once. A cluster keeps only the current rollout of a Canary (in its
status), so ``history`` has one entry; past decisions are in its Events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canarymesh.errors import ConfigError
from canarymesh.runtime.kube.client import CANARY, COMMAND_ANNOTATION, KubeApi, NotFound, api_client
from canarymesh.runtime.kube.rollout_store import split_key

__all__ = ["CLI_FIELD_MANAGER", "KubeRolloutBackend"]

CLI_FIELD_MANAGER = "canarymesh-cli"


class KubeRolloutBackend:
    def __init__(self, api: KubeApi, namespace: str | None = None) -> None:
        self.api, self.namespace = api, namespace

    @staticmethod
    def for_context(context: str, namespace: str | None = None) -> KubeRolloutBackend:
        return KubeRolloutBackend(KubeApi(api_client(context)), namespace)

    def start(self, docs: Sequence[Mapping[str, Any]], namespace: str | None) -> list[str]:
        """Apply each Canary (ours; the CLI translated Flagger's); returns their keys."""
        keys = []
        for doc in docs:
            meta = dict(doc.get("metadata") or {})
            meta["namespace"] = meta.get("namespace") or namespace or "default"
            body = {**doc, "metadata": meta}
            self.api.apply(CANARY, body, manager=CLI_FIELD_MANAGER)
            keys.append(f"{meta['namespace']}/{meta['name']}")
        return keys

    def load(self, name: str) -> Mapping[str, Any] | None:
        """The controller's record of the rollout (``status.rolloutState``), or None yet."""
        record = self._canary(name).get("status", {}).get("rolloutState")
        return record if isinstance(record, dict) else None

    def spec(self, name: str) -> dict[str, Any]:
        spec = self._canary(name).get("spec")
        return spec if isinstance(spec, dict) else {}

    def history(self, name: str) -> list[dict[str, Any]]:
        record = self.load(name)
        return [dict(record)] if record is not None else []

    def names(self) -> list[str]:
        found = self.api.list_canaries(self.namespace)
        return sorted(
            f"{o['metadata'].get('namespace', 'default')}/{o['metadata']['name']}" for o in found
        )

    def send_command(self, name: str, command: str) -> None:
        namespace, canary = split_key(name)
        self._canary(name)
        self.api.annotate(namespace, canary, {COMMAND_ANNOTATION: command})

    def _canary(self, name: str) -> dict[str, Any]:
        namespace, canary = split_key(name)
        try:
            return self.api.get(CANARY, namespace, canary)
        except NotFound:
            raise ConfigError(f"no Canary {name} in the cluster") from None
