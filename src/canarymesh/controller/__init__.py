"""The canary controller: the shell around :mod:`canarymesh.rollout.machine`.

``loop`` asks the pure machine what to do and executes its actions through the ports of
:mod:`canarymesh.ports` (plus the few of :mod:`canarymesh.controller.wiring`); ``observe``
turns what the ports report into the machine's ``Observation``; ``metrics`` records each
decision; ``webhooks`` calls the Canary's hooks. ``local`` wires it all to a local mesh and runs
it as the background process ``python -m canarymesh.controller --state-dir D``; ``kube`` wires it
to a cluster as an in-cluster operator.
"""
