"""PURE package: the canary rollout. Phases and commands (:mod:`.phases`), the step plan of a
spec (:mod:`.plan`), the persisted state (:mod:`.state`), the actions a decision asks for
(:mod:`.actions`), window judging (:mod:`.judging`) and the state machine itself
(:mod:`.machine`, ``advance(state, observation, now) -> Decision``).

Called by the controller loop (the shell, which executes actions through
:mod:`canarymesh.ports`), by :mod:`canarymesh.views` and by ``bench/judge.py``. No I/O, no
clock (``now`` is a parameter), no randomness; import-linter keeps it that way.
"""
