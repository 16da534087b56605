"""The controller's ports over the Kubernetes API (shell), for running Canary Mesh in a cluster
with Istio: :mod:`.router` (weights of the referenced VirtualService or HTTPRoute by
server-side apply), :mod:`.store` (rollout state in the Canary's status, an Event per decision),
:mod:`.metrics` (the cluster's Prometheus), :mod:`.verify` (istiod's view of the proxies),
:mod:`.lease` (leader election), :mod:`.backend` (the ``rollout --context`` CLI's access).

Pure modules, kept so by import-linter: :mod:`.patches` and :mod:`.gateway_patches` (apply
bodies), :mod:`.status` (status and Event bodies), :mod:`.crd` (the CRD generated from the
pydantic model).
"""
