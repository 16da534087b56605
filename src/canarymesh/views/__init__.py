"""PURE package: view models shared by the CLI (``rollout get``, rendered with rich) and the
dashboard (served as JSON). Objects in, plain frozen values out (Argo Rollouts'
``NewRolloutInfo`` is the model); no rich, no web framework, no I/O.
"""
