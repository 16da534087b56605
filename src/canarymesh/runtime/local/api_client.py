"""The client side of the control plane's API: where a mesh is, and blocking calls to it.

Used by every ``canarymesh`` command that acts on a running local mesh (``up`` waits through it
for readiness, ``down`` asks it to stop), by the dashboard and by the canary controller. Each
call has a typed method answering the models of :mod:`.api_models`; :meth:`ApiClient.get` and
:meth:`ApiClient.post` are the raw JSON transport under them. A mesh is found through
``<state_dir>/daemon.json`` (pid and API port, written by the daemon once it is ready) and
``<state_dir>/token``.
Plain ``http.client`` on purpose: a CLI call must not pay for an event loop, and it must ignore
``HTTP_PROXY`` (the apps' variable), which ``http.client`` never reads. The models (and so
pydantic) are imported on the first typed call: ``up``, ``down`` and ``version`` never pay for
them.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast
from urllib.parse import urlencode

from canarymesh.errors import CanaryMeshError, ConfigError, TemporaryError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from canarymesh.runtime.local.api_models import (
        ChangeResult,
        ConfigCanaryState,
        Document,
        DocumentText,
        ExecTarget,
        MeshStatus,
        Pod,
        ProxyStatus,
    )

__all__ = ["DAEMON_FILE", "TOKEN_FILE", "ApiClient", "MeshNotRunning", "daemon_info", "pid_alive"]

DAEMON_FILE = "daemon.json"
TOKEN_FILE = "token"
JsonDict = dict[str, object]
M = TypeVar("M", bound="BaseModel")


class MeshNotRunning(ConfigError):
    """No control plane answers for this state directory."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is gone for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def daemon_info(state_dir: Path) -> JsonDict | None:
    """The running daemon's ``daemon.json``, or None when there is none or its pid is dead."""
    path = state_dir / DAEMON_FILE
    try:
        info = cast(JsonDict, json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
    pid = info.get("pid")
    return info if isinstance(pid, int) and pid_alive(pid) else None


@dataclass(frozen=True, slots=True)
class ApiClient:
    port: int
    token: str
    timeout: float = 60.0

    @classmethod
    def for_state_dir(cls, state_dir: Path, timeout: float = 60.0) -> ApiClient:
        info = daemon_info(state_dir)
        if info is None:
            raise MeshNotRunning(
                f"no local mesh is running in {state_dir}: start one with"
                f" `canarymesh up --state-dir {state_dir}`"
            )
        token = (state_dir / TOKEN_FILE).read_text().strip()
        return cls(int(cast(int, info["api_port"])), token, timeout)

    # --- typed calls ---------------------------------------------------------------------------

    def status(self) -> MeshStatus:
        from canarymesh.runtime.local.api_models import MeshStatus

        return _parse(MeshStatus, self.get("/v1/status"))

    def apply(
        self, documents: Iterable[DocumentText], wait: bool = False, timeout: float = 30.0
    ) -> ChangeResult:
        return self._change("/v1/apply", documents, wait, timeout)

    def delete(
        self, documents: Iterable[DocumentText], wait: bool = False, timeout: float = 30.0
    ) -> ChangeResult:
        return self._change("/v1/delete", documents, wait, timeout)

    def resources(
        self, kinds: Sequence[str], namespace: str | None = None, name: str | None = None
    ) -> tuple[Document, ...]:
        from canarymesh.runtime.local.api_models import ResourceList

        query = {"kinds": ",".join(kinds), "namespace": namespace, "name": name}
        return _parse(ResourceList, self.get("/v1/resources", query)).items

    def pods(self) -> tuple[Pod, ...]:
        from canarymesh.runtime.local.api_models import PodList

        return _parse(PodList, self.get("/v1/pods")).items

    def proxy_status(self) -> tuple[ProxyStatus, ...]:
        from canarymesh.runtime.local.api_models import ProxyStatusList

        return _parse(ProxyStatusList, self.get("/v1/proxy-status")).proxies

    def proxy_config(self, pod: str, section: str, namespace: str | None = None) -> JsonDict:
        """Envoy's own admin JSON for ``section`` of ``pod``'s proxy, as it comes."""
        query = {"pod": pod, "section": section, "namespace": namespace}
        return self.get("/v1/proxy-config", query)

    def logs(
        self,
        pod: str,
        container: str | None = None,
        tail: int | None = None,
        namespace: str | None = None,
    ) -> str:
        from canarymesh.runtime.local.api_models import Logs

        query = {
            "pod": pod,
            "container": container,
            "tail": str(tail) if tail else None,
            "namespace": namespace,
        }
        return _parse(Logs, self.get("/v1/logs", query)).text

    def exec_target(self, pod: str, namespace: str | None, container: str | None) -> ExecTarget:
        from canarymesh.runtime.local.api_models import ExecTarget

        query = {"pod": pod, "namespace": namespace, "container": container}
        return _parse(ExecTarget, self.get("/v1/exec-target", query))

    def config_canary(
        self, namespace: str, name: str, percent: float | None, promote: bool = False
    ) -> ConfigCanaryState:
        """Set a config canary's share of pods, or promote it (see ``ConfigCanaryRequest``)."""
        from canarymesh.runtime.local.api_models import ConfigCanaryRequest, ConfigCanaryState

        body = ConfigCanaryRequest(namespace=namespace, name=name, percent=percent, promote=promote)
        return _parse(ConfigCanaryState, self.post("/v1/config-canary", body.model_dump()))

    def config_canary_state(self, namespace: str, name: str) -> ConfigCanaryState:
        from canarymesh.runtime.local.api_models import ConfigCanaryState

        query = {"namespace": namespace, "name": name}
        return _parse(ConfigCanaryState, self.get("/v1/config-canary", query))

    def wait(self, timeout: float = 30.0) -> None:
        from canarymesh.runtime.local.api_models import WaitRequest

        self.post("/v1/wait", WaitRequest(timeout=timeout).model_dump())

    def _change(
        self, path: str, documents: Iterable[DocumentText], wait: bool, timeout: float
    ) -> ChangeResult:
        from canarymesh.runtime.local.api_models import ChangeRequest, ChangeResult

        body = ChangeRequest(documents=tuple(documents), wait=wait, timeout=timeout)
        return _parse(ChangeResult, self.post(path, body.model_dump()))

    # --- the transport ---------------------------------------------------------------------------

    def get(self, path: str, query: Mapping[str, str | None] | None = None) -> JsonDict:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return self._call("GET", path + (f"?{urlencode(params)}" if params else ""), None)

    def post(self, path: str, body: JsonDict | None = None) -> JsonDict:
        return self._call("POST", path, body or {})

    def _call(self, method: str, path: str, body: JsonDict | None) -> JsonDict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, payload, headers)
            response = connection.getresponse()
            text = response.read().decode()
        except OSError as err:
            raise TemporaryError(f"control plane on port {self.port}: {err}", delay=1.0) from err
        finally:
            connection.close()
        try:
            answer = cast(JsonDict, json.loads(text))
        except ValueError:
            raise CanaryMeshError(
                f"control plane answered {response.status}: {text[:200]}"
            ) from None
        if response.status == 200:
            return answer
        from pydantic import ValidationError

        from canarymesh.runtime.local.api_models import ApiError

        try:
            error = ApiError.model_validate(answer)
        except ValidationError:
            raise CanaryMeshError(f"control plane answered {response.status}: {text}") from None
        if error.kind == "temporary":
            raise TemporaryError(error.error, delay=1.0)
        if error.kind == "config":
            raise ConfigError(error.error)
        raise CanaryMeshError(f"control plane answered {response.status}: {error.error}")


def _parse(model: type[M], answer: JsonDict) -> M:
    from pydantic import ValidationError

    try:
        return model.model_validate(answer)
    except ValidationError as err:
        raise CanaryMeshError(
            f"control plane answered an unexpected {model.__name__}: {err}"
        ) from None
