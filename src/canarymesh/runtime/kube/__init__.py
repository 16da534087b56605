"""The controller's ports over the Kubernetes API (shell), for running Canary Mesh in a cluster
with Istio: :mod:`.router` (weights of the referenced VirtualService or HTTPRoute by
server-side apply), :mod:`.rollout_store` (rollout state in the Canary's status, an Event per
decision), :mod:`.verify` (istiod's view of the proxies), :mod:`.lease` (leader election),
:mod:`.watch` (the watched Canaries), :mod:`.backend` (the ``rollout --context`` CLI's access).
The cluster's Prometheus is read through the client both runtimes share
(:mod:`canarymesh.ports.prometheus`).

Pure modules, kept so by import-linter: :mod:`.patches` (apply bodies), :mod:`.status` (status
and Event bodies), :mod:`.crd` (the CRD generated from the pydantic model).
"""
