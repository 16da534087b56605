"""Kubernetes core and apps objects the local mesh uses: Namespace, Service, ServiceAccount,
Deployment, Secret, ConfigMap; and Pod and Node, which only analysis reads (as Istio's workload
analyzers do). Pure input schemas, read by the loader, consumed by the mesh model and the local
runtime (which starts one process per Deployment replica).

Only the fields we use are typed; every other Kubernetes field is kept untouched
(``extra="allow"``), so real manifests (securityContext, volumes, dual-stack settings) load.
For Secret, ConfigMap and ServiceAccount, which have no ``spec``, the "spec" model holds their
top-level fields (see :class:`canarymesh.api.objects.Resource`).
"""

from __future__ import annotations

from pydantic import Field

from canarymesh.api.base import Int, IntOrStr, KubeModel, Labels, Str, Strs

__all__ = [
    "ConfigMap",
    "Container",
    "ContainerPort",
    "Deployment",
    "EnvFromSource",
    "EnvVar",
    "KeyRefSource",
    "LabelSelector",
    "Namespace",
    "Node",
    "Pod",
    "PodSpec",
    "PodTemplateMetadata",
    "PodTemplateSpec",
    "Probe",
    "ResourceRequirements",
    "Secret",
    "SecurityContext",
    "Service",
    "ServiceAccount",
    "ServicePort",
]


class Namespace(KubeModel):
    """A namespace has no spec we use; kept so that ``apply`` can create it."""


class ServicePort(KubeModel):
    """A port; Istio picks the protocol from ``app_protocol`` or the name prefix (``http-...``)."""

    name: Str | None = None
    port: Int
    target_port: IntOrStr | None = None
    protocol: Str | None = None
    app_protocol: Str | None = None
    node_port: Int | None = None


class Service(KubeModel):
    ports: tuple[ServicePort, ...] = ()
    selector: Labels = Field(default_factory=dict)
    type: Str | None = None
    cluster_ip: Str | None = Field(default=None, alias="clusterIP")


class ServiceAccount(KubeModel):
    """Identity of a workload: its SPIFFE id is ``spiffe://cluster.local/ns/<ns>/sa/<name>``."""

    automount_service_account_token: bool | None = None


class LabelSelector(KubeModel):
    match_labels: Labels = Field(default_factory=dict)
    match_expressions: tuple[dict[Str, object], ...] = ()


class EnvVar(KubeModel):
    """``value`` or ``value_from`` (a secretKeyRef/configMapKeyRef, resolved by the runtime)."""

    name: Str
    value: Str | None = None
    value_from: dict[Str, object] | None = None


class KeyRefSource(KubeModel):
    """``envFrom``'s ``configMapRef``/``secretRef``: every key of the named object."""

    name: Str
    optional: bool | None = None


class EnvFromSource(KubeModel):
    prefix: Str | None = None
    config_map_ref: KeyRefSource | None = None
    secret_ref: KeyRefSource | None = None


class SecurityContext(KubeModel):
    """The user a container (or, on the pod, every container) runs as."""

    run_as_user: Int | None = None
    run_as_group: Int | None = None
    run_as_non_root: bool | None = None


class ContainerPort(KubeModel):
    container_port: Int
    name: Str | None = None
    protocol: Str | None = None


class Probe(KubeModel):
    """``http_get`` (path, port), ``tcp_socket`` or ``exec``, with Kubernetes' timing fields."""

    http_get: dict[Str, object] | None = None
    tcp_socket: dict[Str, object] | None = None
    exec: dict[Str, object] | None = None
    initial_delay_seconds: Int | None = None
    period_seconds: Int | None = None
    timeout_seconds: Int | None = None
    failure_threshold: Int | None = None
    success_threshold: Int | None = None


class ResourceRequirements(KubeModel):
    limits: dict[Str, IntOrStr] = Field(default_factory=dict)
    requests: dict[Str, IntOrStr] = Field(default_factory=dict)


class Container(KubeModel):
    name: Str
    image: Str | None = None
    command: Strs = ()
    args: Strs = ()
    env: tuple[EnvVar, ...] = ()
    env_from: tuple[EnvFromSource, ...] = ()
    working_dir: Str | None = None
    security_context: SecurityContext | None = None
    ports: tuple[ContainerPort, ...] = ()
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None
    resources: ResourceRequirements | None = None
    image_pull_policy: Str | None = None


class PodSpec(KubeModel):
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    service_account_name: Str | None = None
    security_context: SecurityContext | None = None


class Pod(PodSpec):
    """A bare Pod's spec, which the local mesh does not run and analysis reads. A field of its
    own (not of PodSpec): the local runtime names pods after their template's fields."""

    node_name: Str | None = None


class Node(KubeModel):
    """A cluster node: analysis reads its topology labels (region, zone) from metadata."""


class PodTemplateMetadata(KubeModel):
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)


class PodTemplateSpec(KubeModel):
    metadata: PodTemplateMetadata = Field(default_factory=PodTemplateMetadata)
    spec: PodSpec = Field(default_factory=PodSpec)


class Deployment(KubeModel):
    """``replicas`` pods built from ``template``; ``replicas`` defaults to 1 as in Kubernetes."""

    replicas: Int | None = None
    selector: LabelSelector | None = None
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)

    @property
    def replica_count(self) -> int:
        return 1 if self.replicas is None else self.replicas


class Secret(KubeModel):
    """``data`` values are base64 text; ``string_data`` values are plain."""

    type: Str | None = None
    data: Labels = Field(default_factory=dict)
    string_data: Labels = Field(default_factory=dict)


class ConfigMap(KubeModel):
    data: Labels = Field(default_factory=dict)
    binary_data: Labels = Field(default_factory=dict)
