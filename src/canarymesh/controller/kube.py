"""The canary controller as an in-cluster operator: ``python -m canarymesh.controller.kube`` (the
command of ``deploy/deployment.yaml``). The same loop as on the local mesh
(:class:`canarymesh.controller.loop.Controller`), wired to :mod:`canarymesh.runtime.kube`.

Settings come from the environment at the process edge only (:meth:`KubeSettings.from_env`).
Every replica watches the Canaries; only the holder of the Lease runs the loop, so two replicas
never act at once. Manual commands (``canarymesh rollout promote --context …``) arrive as the
annotation ``canarymesh.io/command`` on the Canary and are taken once. Decisions are told to
the AlertProviders a Canary names and to the mesh-wide ones (:class:`KubeProviders`), as on
the local mesh, by the same notifier (:mod:`canarymesh.controller.notify`).
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from canarymesh.api.canary import ROLLOUT_ID_ANNOTATION, Canary, LoadGeneratorSpec
from canarymesh.controller.loop import Controller
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.controller.notify import Notifier, NotifyMetrics
from canarymesh.controller.observe import subset_versions
from canarymesh.controller.webhooks import HttpWebhooks
from canarymesh.controller.wiring import (
    CanaryItem,
    DecisionSinks,
    ProviderItem,
    Wiring,
    canary_item,
    provider_items,
)
from canarymesh.ports import TrafficRouter
from canarymesh.ports.clock import SystemClock
from canarymesh.ports.load import LoadGenerator
from canarymesh.ports.prometheus import PrometheusSource
from canarymesh.runtime.kube.client import (
    ALERT_PROVIDER,
    COMMAND_ANNOTATION,
    DESTINATION_RULE,
    KubeApi,
    api_client,
)
from canarymesh.runtime.kube.config_router import KubeConfigRouter
from canarymesh.runtime.kube.group_router import KubeGroupRouter
from canarymesh.runtime.kube.health import serve_health
from canarymesh.runtime.kube.lease import LeaderElector
from canarymesh.runtime.kube.rollout_store import KubeStateStore
from canarymesh.runtime.kube.router import KubeRouter
from canarymesh.runtime.kube.verify import IstiodVerifier
from canarymesh.runtime.kube.watch import CanaryWatch

__all__ = ["KubeCanaries", "KubeProviders", "KubeSettings", "main", "wiring_for"]

log = logging.getLogger("canarymesh.controller")
LOAD_LIMIT = 3600.0


@dataclass(frozen=True, slots=True)
class KubeSettings:
    prometheus_url: str = "http://prometheus.istio-system:9090"
    prometheus_authorization: str | None = None
    istiod_url: str | None = "http://istiod.istio-system:15014"
    lease_namespace: str = "canarymesh-system"
    lease_name: str = "canarymesh-controller"
    identity: str = "canarymesh-controller"
    metrics_port: int = 8080
    tick: float = 1.0

    @staticmethod
    def from_env(env: Mapping[str, str]) -> KubeSettings:
        default = KubeSettings()
        istiod = env.get("CANARYMESH_ISTIOD_URL", default.istiod_url)
        return KubeSettings(
            prometheus_url=env.get("CANARYMESH_PROMETHEUS_URL", default.prometheus_url),
            prometheus_authorization=env.get("CANARYMESH_PROMETHEUS_AUTHORIZATION") or None,
            istiod_url=istiod or None,  # empty: verify on the API object only
            lease_namespace=env.get("CANARYMESH_LEASE_NAMESPACE", default.lease_namespace),
            identity=env.get("CANARYMESH_POD_NAME", default.identity),
            metrics_port=int(env.get("CANARYMESH_METRICS_PORT", str(default.metrics_port))),
        )


class KubeCanaries:
    """The watched Canaries as the loop's items, with each subset's ``version`` label."""

    def __init__(self, api: KubeApi, watch: CanaryWatch) -> None:
        self.api, self.watch = api, watch
        self.annotations: dict[str, dict[str, str]] = {}

    def list(self) -> tuple[CanaryItem, ...]:
        items = []
        for obj in self.watch.objects():
            meta = obj.get("metadata", {})
            namespace, name = str(meta.get("namespace", "default")), str(meta.get("name"))
            try:
                canary = Canary.model_validate(obj.get("spec") or {})
            except ValidationError as err:
                log.error("Canary %s/%s cannot be read: %s", namespace, name, err)
                continue
            annotations = dict(meta.get("annotations") or {})
            self.annotations[f"{namespace}/{name}"] = annotations
            rollout_id = annotations.get(ROLLOUT_ID_ANNOTATION) or str(meta.get("uid", "applied"))
            versions = self._versions(canary, namespace)
            items.append(canary_item(namespace, name, rollout_id, canary, versions, "cluster"))
        return tuple(items)

    def take_command(self, name: str) -> str | None:
        """The manual command annotated on the Canary, removed so it is taken only once."""
        command = self.annotations.get(name, {}).pop(COMMAND_ANNOTATION, None)
        if command is None:
            return None
        namespace, canary = name.split("/", 1)
        taken = self.api.take_annotation(namespace, canary, COMMAND_ANNOTATION, command)
        return command if taken else None

    def _versions(self, canary: Canary, namespace: str) -> tuple[tuple[str, str], ...]:
        if canary.config is not None:
            return ()  # a config canary splits pods by a label, not versions by subsets
        rules = self.api.list_objects(DESTINATION_RULE, namespace)
        return subset_versions(rules, canary, namespace)


class KubeProviders:
    """The notifier's AlertProviders (every namespace) and Secrets, read from the API server
    when an event is resolved, so a changed provider or a rotated Secret counts at once."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api

    def providers(self) -> tuple[ProviderItem, ...]:
        return provider_items(self.api.list_all(ALERT_PROVIDER))

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.api.secret_data(namespace, name)


class KubeLoad:
    """The built-in load generator, sending to the in-cluster URL of the spec."""

    def __init__(self) -> None:
        self.running: dict[str, LoadGenerator] = {}

    def start(self, item: CanaryItem) -> None:
        spec: LoadGeneratorSpec | None = item.canary.load_generator
        if spec is None or item.key in self.running:
            return
        runner = LoadGenerator(spec.url, float(spec.rps), LOAD_LIMIT, dict(spec.headers))
        self.running[item.key] = runner.start()

    def stop(self, key: str) -> None:
        runner = self.running.pop(key, None)
        if runner is not None:
            runner.stop()


def wiring_for(
    api: KubeApi,
    settings: KubeSettings,
    watch: CanaryWatch,
    metrics: ControllerMetrics,
    notifier: Notifier | None = None,
) -> tuple[Wiring, KubeCanaries]:
    """The loop's wiring; decisions go to ``metrics`` and, when given, to ``notifier``."""
    verifier = IstiodVerifier(settings.istiod_url) if settings.istiod_url else None
    canaries = KubeCanaries(api, watch)

    def router_for(item: CanaryItem) -> TrafficRouter:
        if item.canary.config is not None:
            return KubeConfigRouter(api, item.namespace, item.name, verifier)
        if item.canary.group is not None:
            return KubeGroupRouter(api, item.namespace, item.name)
        return KubeRouter(api, item.namespace, item.name, verifier)

    wiring = Wiring(
        canaries=canaries,
        router_for=router_for,
        metrics=PrometheusSource(
            settings.prometheus_url, authorization=settings.prometheus_authorization
        ),
        store=KubeStateStore(api, settings.identity),
        clock=SystemClock(),
        inbox=canaries,
        webhooks=HttpWebhooks(),
        load=KubeLoad(),
        sink=metrics if notifier is None else DecisionSinks(metrics, notifier),
    )
    return wiring, canaries


def run(wiring: Wiring, elector: LeaderElector, stop: threading.Event, tick: float) -> None:
    """Act only while holding the Lease; a follower keeps trying to take it."""
    controller = Controller(wiring)
    while not stop.is_set():
        now = datetime.datetime.now(datetime.UTC)
        if elector.try_acquire(now):
            controller.run_once()
        stop.wait(tick)


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # configured by the environment, as a Deployment is
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = KubeSettings.from_env(os.environ)
    api = KubeApi(api_client(in_cluster=True))
    metrics = ControllerMetrics()
    watch = CanaryWatch(api).start()
    health = serve_health("0.0.0.0", settings.metrics_port, metrics.registry, watch.synced.is_set)
    # Only the Lease holder decides, so only its notifier has events to send.
    notifier = Notifier(KubeProviders(api), NotifyMetrics(metrics.registry), SystemClock())
    wiring, _ = wiring_for(api, settings, watch, metrics, notifier.start())
    elector = LeaderElector(api, settings.lease_namespace, settings.lease_name, settings.identity)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("canary controller %s up; leader election on %s/%s", settings.identity,
             settings.lease_namespace, settings.lease_name)  # fmt: skip
    try:
        run(wiring, elector, stop, settings.tick)
    finally:
        notifier.stop()
        watch.stop()
        health.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
