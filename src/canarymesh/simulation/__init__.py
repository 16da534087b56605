"""What-if simulation of canary rollouts: simulated traffic (:mod:`.traffic`), a Prometheus that
answers the controller's own PromQL from it (:mod:`.prometheus`), and rollouts driven through the
real controller and the real state machine (:mod:`.rollouts`), summarised side by side with a
Flagger-style threshold plan (:mod:`.summary`).

Used by ``canarymesh rollout simulate`` and by ``bench/judge.py``. Shell code: it draws random
numbers (from a seeded generator, so every run can be repeated) and plays the clock, the router and
Prometheus for the controller; the decisions are the real ones.
"""
