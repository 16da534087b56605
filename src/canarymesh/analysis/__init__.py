"""PURE package: canary analysis. PromQL templates as data (:mod:`.queries`), what a window
measured (:mod:`.windows`) and how Prometheus answers become those
numbers (:mod:`.measure`), the judges (:mod:`.threshold`, Flagger's; :mod:`.statistical`, a
sequential canary-vs-stable test) and their verdicts (:mod:`.verdict`).

Called by :mod:`canarymesh.rollout.machine` and ``bench/judge.py``. No I/O, no clock, no
randomness: windows come in as values; import-linter keeps it that way.
"""
