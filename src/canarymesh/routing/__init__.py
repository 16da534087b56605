"""The managed routes of a Canary: a rollout's weights written into the user's own route object.

Pure functions from (the user's VirtualService or HTTPRoute, the Canary, the weights the rollout
wants) to the managed object, and back from an object to the weights it holds. Both runtimes use
them; only applying the result differs (the local mesh applies the object to its store,
:mod:`canarymesh.runtime.local.router`; a cluster server-side-applies its route list,
:mod:`canarymesh.runtime.kube.router`). One set of golden files pins them
(``tests/golden/routes/``), and each runtime's router is tested against the same files.

``managed`` says which routes are the controller's to rewrite and names the routes it adds;
``virtual_service`` and ``http_route`` write Istio's and Gateway API's forms.
"""
