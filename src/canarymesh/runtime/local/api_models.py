"""The control plane's HTTP API as types: what each ``/v1/...`` call accepts and answers.

One set of pydantic models shared by the server (:mod:`.control` builds them,
:mod:`.api_server` sends them), the client (:mod:`.api_client` parses them) and everything that
reads a mesh through it (the CLI, the dashboard, the canary controller), so no side reads a
dict row by key and hopes. Answers ignore fields they do not know (a newer control plane may
send more); requests refuse them (a typo is an error, not a silent default).

Applied documents stay documents (:data:`Document`): they are the user's Kubernetes objects,
typed by :mod:`canarymesh.api` where they are used. ``/v1/proxy-config`` answers Envoy's own
admin JSON, passed through as it comes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ALERT_PROVIDER_KIND",
    "CANARY_KIND",
    "DEPLOYMENT_KIND",
    "DESTINATION_RULE_KIND",
    "SECRET_KIND",
    "VIRTUAL_SERVICE_KIND",
    "ApiError",
    "ChangeRequest",
    "ChangeResult",
    "Component",
    "ConfigCanaryRequest",
    "ConfigCanaryState",
    "Container",
    "Converged",
    "Document",
    "DocumentText",
    "ExecTarget",
    "GatewayStatus",
    "Logs",
    "MeshStatus",
    "Network",
    "Pod",
    "PodList",
    "PodPorts",
    "ProxyStatus",
    "ProxyStatusList",
    "ResourceList",
    "Stopping",
    "Telemetry",
    "WaitRequest",
]

# Kinds as ``/v1/resources?kinds=`` names them (the store's keys: kind.group, as kubectl does).
CANARY_KIND = "canary.canarymesh.io"
VIRTUAL_SERVICE_KIND = "virtualservice.networking.istio.io"
DESTINATION_RULE_KIND = "destinationrule.networking.istio.io"
ALERT_PROVIDER_KIND = "alertprovider.canarymesh.io"
SECRET_KIND = "secret"
DEPLOYMENT_KIND = "deployment.apps"

Document = dict[str, Any]
# "host": every pod shares the host's network (loopback ports); "pod": each pod has its own
# network namespace and IP, as in Kubernetes.
Network = Literal["pod", "host"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- POST /v1/apply, /v1/delete -----------------------------------------------------------------


class DocumentText(_Request):
    """One YAML stream to apply, where it came from, and the namespace of objects naming none."""

    text: str
    source: str = "<input>"
    namespace: str | None = None


class ChangeRequest(_Request):
    documents: tuple[DocumentText, ...]
    wait: bool = False  # answer once every pod is ready and every proxy ACKed (or NACKed)
    timeout: float = Field(default=30.0, gt=0, le=3600)


class ChangeResult(_Answer):
    lines: tuple[str, ...]  # kubectl's: ``deployment.apps/reviews-v1 created``
    pushed: tuple[str, ...]  # the proxies whose config changed
    applied_ms: float
    converged_ms: float


# --- GET /v1/resources --------------------------------------------------------------------------


class ResourceList(_Answer):
    items: tuple[Document, ...]


# --- GET /v1/pods -------------------------------------------------------------------------------


class Container(_Answer):
    """One process of a pod (its app, or its sidecar ``istio-proxy``), as the supervisor has it."""

    name: str
    pid: int | None
    phase: str
    ready: bool
    restarts: int
    last_exit_code: int | None = None
    error: str | None = None


class PodPorts(_Answer):
    """Where a pod listens on the host: Envoy's admin, its outbound HTTP listener, and per
    service port the sidecar's inbound listener and the app's own port."""

    admin: int
    outbound_http: int
    inbound: dict[int, int] = Field(default_factory=dict)
    app: dict[int, int] = Field(default_factory=dict)


class Pod(_Answer):
    """A row of ``get pods`` (kubectl's columns and more)."""

    name: str
    namespace: str
    deployment: str
    ready: str  # kubectl's READY: ready containers / containers
    status: str  # kubectl's STATUS: Running, ContainerCreating, CrashLoopBackOff, ...
    restarts: int
    age: float  # seconds
    ip: str | None = None  # the pod's own IP; None while pods share the host's network
    node: str = "local"
    netns: str | None = None  # the pod's network namespace (pod networks only)
    containers: tuple[Container, ...]
    labels: dict[str, str] = Field(default_factory=dict)
    service_account: str = "default"
    ports: PodPorts


class PodList(_Answer):
    items: tuple[Pod, ...]


# --- GET /v1/proxy-status -----------------------------------------------------------------------


class ProxyStatus(_Answer):
    """What one Envoy holds compared with what the control plane wants (``proxy-status``)."""

    name: str  # the proxy's id (a pod's is ``<pod>.<namespace>``)
    pod: str | None = None  # the pod (or gateway) it belongs to
    namespace: str
    connected: bool
    synced: bool  # connected, and every xDS type ACKed at the wanted version
    version: str | None = None
    types: dict[str, str] = Field(default_factory=dict)  # xDS type -> SYNCED, NACKED, ...
    errors: dict[str, str] = Field(default_factory=dict)  # xDS type -> Envoy's rejection


class ProxyStatusList(_Answer):
    proxies: tuple[ProxyStatus, ...]


# --- GET /v1/status -----------------------------------------------------------------------------


class Component(_Answer):
    """A process of the mesh (the control plane, Prometheus, a pod's app or sidecar)."""

    name: str
    pid: int | None
    ready: bool
    phase: str | None = None
    restarts: int = 0


class GatewayStatus(_Answer):
    """A gateway's Envoy: its server ports -> local ports, its admin port, its process."""

    name: str
    namespace: str
    ports: dict[str, int] = Field(default_factory=dict)
    admin: int
    ip: str | None = None
    pid: int | None = None
    phase: str | None = None
    ready: bool = False
    restarts: int = 0
    last_exit_code: int | None = None
    error: str | None = None


class Telemetry(_Answer):
    als: str  # where Envoys send access logs: a Unix socket, or 127.0.0.1:<port>
    metrics_port: int


class MeshStatus(_Answer):
    """The running mesh: where it is, its URLs and ports, and every component with its pid."""

    pid: int
    keeper: int | None = None  # the process that restarts a killed control plane
    restarts: int = 0  # how often the keeper restarted it
    adopted: int = 0  # children a restarted control plane found running and kept
    state_dir: str
    api_port: int
    network: Network = "host"
    pod_cidr: str | None = None  # pod networks only
    service_cidr: str | None = None
    ads: str  # the ADS server: a Unix socket, or 127.0.0.1:<port>
    ads_port: int | None = None
    ingress_port: int
    ingress_url: str
    prometheus_url: str | None = None
    tracing_url: str | None = None
    telemetry: Telemetry | None = None
    components: tuple[Component, ...] = ()
    gateways: tuple[GatewayStatus, ...] = ()
    pods: int = 0


# --- the rest -----------------------------------------------------------------------------------


class Logs(_Answer):
    text: str


class ExecTarget(_Answer):
    """What ``canarymesh exec`` needs to run a command as a pod's container would."""

    pod: str
    namespace: str
    netns: str | None = None
    run_as: tuple[int, int] | None = None  # uid, gid
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


# --- POST /v1/config-canary ---------------------------------------------------------------------


class ConfigCanaryRequest(_Request):
    """Set a config canary's share (percent of its pods on the changed config; None: none, every
    pod back on the current config), or promote it (its changed documents become the config)."""

    namespace: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)
    percent: float | None = Field(default=None, ge=0, le=100)
    promote: bool = False


class ConfigCanaryState(_Answer):
    canary: str  # namespace/name
    percent: float | None
    applied: bool  # the changed documents are the config every pod runs (promoted)
    canary_pods: tuple[str, ...]  # the pods on the changed config
    stable_pods: tuple[str, ...]  # the pods it split that kept the current config
    pushed: tuple[str, ...]


class WaitRequest(_Request):
    timeout: float = Field(default=30.0, gt=0, le=3600)


class Converged(_Answer):
    converged: bool


class Stopping(_Answer):
    stopping: bool


class ApiError(_Answer):
    """Every error answer: 400 ``config`` (fix the input), 503 ``temporary`` (try again), 401
    ``auth``, 500 ``internal`` (a bug; the control plane's log has the traceback)."""

    error: str
    kind: Literal["config", "temporary", "auth", "internal"]
