"""The evidence about one metric: how likely the counts seen so far are if the canary's rate of bad
requests (5xx, or slow) is ``r`` times the stable's, for every ``r`` of a grid. Pure; updated by
:mod:`canarymesh.analysis.statistical` once per judged window, kept in the rollout's state.

The model of one window (``n`` requests and ``x`` bad ones per version) says what moves the counts
besides the canary itself, so that none of it passes for the canary's doing:

* **the stable's level** ``p``: unknown, with a Gamma belief that starts from the stable's own
  history (the minutes before the rollout), learns from every window of both versions and
  forgets slowly (:data:`DRIFT_MEMORY`: the level may drift); the canary's requests fail at
  ``r * p``. Averaging over that belief (instead of plugging in an estimate) is what keeps the
  test honest when the history is short.
* **shared spikes**: for a while both versions fail (or slow down) ``lambda`` times as often
  (:data:`SPIKES`). A spike shows in the stable's counts of the same window, so it explains the
  canary's counts too: load spikes shared by both versions cancel.
* **one side's bursts**: the canary's side alone fails for a few seconds (one bad replica, a node
  hiccup); during a burst its count says nothing about ``r``.

Spikes and bursts are hidden states of a Markov chain with one-second steps; the likelihood of
every ``r`` is computed by the forward algorithm. One more alternative, **broken**, is the null's
chain in which a burst, once started, never ends: the canary failing (a share of) its requests
for good. The ratio alternatives cannot explain a canary that fails nearly every request while
the stable does not (their Poisson rate ``r * p`` stays far below the canary's request rate), so
without it such a canary would pass as one endless burst under every hypothesis alike.

The evidence against "the canary is no worse than ``tolerance`` times the stable" is the
likelihood ratio averaged over the alternatives (a mixture), and under that hypothesis it is a
nonnegative martingale: by Ville's inequality it exceeds ``1/a`` with probability at most ``a``,
however often it is looked at (``docs/judge.md`` has the argument). The same likelihoods give
the evidence *for* the canary against a named regression (:meth:`Evidence.log_futility`) and an
always-valid confidence interval on ``r``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = [
    "BURST",
    "GRID",
    "NULL_INDEX",
    "SPIKES",
    "WEIGHTS",
    "Evidence",
    "Prior",
    "update",
]

# Ratios (canary's rate of bad requests / the stable's, divided by the tolerance) the evidence is
# kept for. Below 1: for the confidence interval; above 1: the alternatives of the test.
GRID: tuple[float, ...] = (
    0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 150.0,
)  # fmt: skip
NULL_INDEX = GRID.index(1.0)
# The test's prior over its alternatives (the ratios above 1): even over the regressions a
# rollout is about, small on the two catastrophic ones (a canary failing most of its requests),
# whose evidence is overwhelming anyway.
WEIGHTS: tuple[float, ...] = (1.0,) * 8 + (0.25, 0.25)
# The broken alternative's weight: as likely as any ordinary ratio (a change that breaks a call
# outright is a common regression, and the test needs half a minute to tell it from a burst).
BROKEN_WEIGHT = 1.0
_LOG_WEIGHTS = tuple(math.log(w / (sum(WEIGHTS) + BROKEN_WEIGHT)) for w in WEIGHTS)
_LOG_BROKEN_WEIGHT = math.log(BROKEN_WEIGHT / (sum(WEIGHTS) + BROKEN_WEIGHT))
# Shared changes of both versions' rates: (times, starts on average every .. s, lasts .. s on
# average). A level that moves for the rest of a quarter hour, a few minutes of trouble, a
# spike.
SPIKES: tuple[tuple[float, float, float], ...] = (
    (2.0, 1800.0, 600.0),
    (4.0, 900.0, 120.0),
    (16.0, 300.0, 10.0),
)
# The stable's level drifts: the belief about it forgets with this time constant (seconds), so
# a level that moved (a slower backend for the rest of the hour) is learnt again, not held
# against the canary.
DRIFT_MEMORY = 600.0
_FORGET = math.exp(-1.0 / DRIFT_MEMORY)
# One side's bursts: start on average every BURST_EVERY s, last BURST_LENGTH s on average. During
# one, the canary fails one of these shares of its requests (as likely each), whatever r is.
BURST = "burst"
BURST_EVERY = 300.0
BURST_LENGTH = 5.0
BURST_SHARES = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
# Hidden states: (lambda, burst); index = level * 2 + burst.
_LEVELS = (1.0, *(times for times, _, _ in SPIKES))
_STATES = tuple((level, burst) for level in _LEVELS for burst in (False, True))
_LOG_LEVELS = tuple(math.log(level) for level in _LEVELS)
# Probabilities below this are taken as zero (subnormal floats are slow and mean nothing).
_TINY = 1e-150


@dataclass(frozen=True, slots=True)
class Prior:
    """The belief about the stable's rate of bad requests before the rollout: as if ``bad`` of
    ``requests`` had been seen (its history, plus a weak start of half a bad request in 50)."""

    bad: float = 0.5
    requests: float = 50.0

    @staticmethod
    def from_history(bad: int, requests: int) -> Prior:
        return Prior(0.5 + bad, 50.0 + requests)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The forward algorithm's state for every ratio of :data:`GRID` (times ``tolerance``).

    ``log_likelihood[k]``: log probability of every count so far if the ratio is ``GRID[k]``;
    ``forward[k]``: the probabilities of the hidden states now; ``belief[k]``:
    the Gamma (shape, rate) belief about the stable's rate. ``peak``: the highest log mixture
    seen so far (the always-valid p-value is ``exp(-peak)``). Totals count requests and bad
    requests of the rollout, each version.
    """

    tolerance: float = 1.0
    log_likelihood: tuple[float, ...] = (0.0,) * len(GRID)
    forward: tuple[tuple[float, ...], ...] = ()
    belief: tuple[tuple[float, float], ...] = ()
    peak: float = 0.0
    canary_requests: int = 0
    canary_bad: int = 0
    stable_requests: int = 0
    stable_bad: int = 0
    prior: Prior = Prior()
    windows: int = 0
    # The broken alternative's track (module docstring): its log likelihood, hidden states and
    # belief, as for one ratio.
    broken_log_likelihood: float = 0.0
    broken_forward: tuple[float, ...] = ()
    broken_belief: tuple[float, float] = (0.5, 50.0)

    @staticmethod
    def start(prior: Prior, tolerance: float = 1.0) -> Evidence:
        calm = (1.0, *([0.0] * (len(_STATES) - 1)))
        return Evidence(
            tolerance=tolerance,
            forward=(calm,) * len(GRID),
            belief=((prior.bad, prior.requests),) * len(GRID),
            prior=prior,
            broken_forward=calm,
            broken_belief=(prior.bad, prior.requests),
        )

    # --- what the evidence says ------------------------------------------------------------

    @property
    def log_mixture(self) -> float:
        """Log of the likelihood ratio averaged over the alternatives (ratios above 1) against
        the null (ratio 1): the test's current evidence against the canary."""
        weighted = [
            w + v for w, v in zip(_LOG_WEIGHTS, self.log_likelihood[NULL_INDEX + 1 :], strict=True)
        ]
        weighted.append(_LOG_BROKEN_WEIGHT + self.broken_log_likelihood)
        return _log_sum(weighted) - self.log_likelihood[NULL_INDEX]

    @property
    def p_value(self) -> float:
        """Always valid: the chance that a canary no worse than ``tolerance`` times the stable
        ever shows this much evidence."""
        return min(1.0, math.exp(-self.peak))

    def log_futility(self, ratio: float) -> float:
        """Log evidence that the canary is no worse than the tolerance, against its being
        ``ratio`` times the stable (interpolated on the grid, in logs)."""
        return self.log_likelihood[NULL_INDEX] - self._log_likelihood_at(ratio / self.tolerance)

    def interval(self, alpha: float) -> tuple[float, float]:
        """An always-valid ``1 - alpha`` confidence interval on the ratio (canary / stable rate
        of bad requests): the grid ratios the mixture of all others has not rejected. Ends at
        0 or infinity when the grid's end is not rejected."""
        logs = self.log_likelihood
        top = max(logs)
        scaled = [math.exp(v - top) for v in logs]
        total, limit = sum(scaled), math.log(1.0 / alpha)
        kept = []
        for k, own in enumerate(scaled):
            others = (total - own) / (len(logs) - 1)
            # The mixture of every other ratio against this one has not reached 1/alpha.
            if others <= 0 or math.log(others) + top - logs[k] < limit:
                kept.append(k)
        if not kept:  # every grid point rejected: say the best one
            best = max(range(len(GRID)), key=lambda k: self.log_likelihood[k])
            kept = [best]
        low = 0.0 if kept[0] == 0 else GRID[kept[0]] * self.tolerance
        high = math.inf if kept[-1] == len(GRID) - 1 else GRID[kept[-1]] * self.tolerance
        return low, high

    def estimate(self) -> float | None:
        """The canary's rate of bad requests over the stable's, from the totals (None: no
        canary requests or no bad stable request yet)."""
        if self.canary_requests == 0:
            return None
        stable = (self.prior.bad + self.stable_bad) / (self.prior.requests + self.stable_requests)
        return (self.canary_bad / self.canary_requests) / stable if stable > 0 else None

    def _log_likelihood_at(self, ratio: float) -> float:
        if ratio <= GRID[0]:
            return self.log_likelihood[0]
        if ratio >= GRID[-1]:
            return self.log_likelihood[-1]
        upper = next(k for k, r in enumerate(GRID) if r >= ratio)
        lower = upper - 1
        share = math.log(ratio / GRID[lower]) / math.log(GRID[upper] / GRID[lower])
        return (1 - share) * self.log_likelihood[lower] + share * self.log_likelihood[upper]

    # --- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "tolerance": self.tolerance,
            "logLikelihood": list(self.log_likelihood),
            "forward": [list(row) for row in self.forward],
            "belief": [list(pair) for pair in self.belief],
            "peak": self.peak,
            "canary": [self.canary_requests, self.canary_bad],
            "stable": [self.stable_requests, self.stable_bad],
            "prior": [self.prior.bad, self.prior.requests],
            "windows": self.windows,
            "broken": {
                "logLikelihood": self.broken_log_likelihood,
                "forward": list(self.broken_forward),
                "belief": list(self.broken_belief),
            },
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> Evidence:
        try:
            canary, stable, prior = data["canary"], data["stable"], data["prior"]
            likelihood, forward, belief = data["logLikelihood"], data["forward"], data["belief"]
            assert isinstance(canary, list) and isinstance(stable, list)
            assert isinstance(prior, list) and isinstance(likelihood, list)
            assert isinstance(forward, list) and isinstance(belief, list)
            assert len(likelihood) == len(forward) == len(belief) == len(GRID)
            assert all(isinstance(row, list) and len(row) == len(_STATES) for row in forward)
            tolerance, peak, windows = data["tolerance"], data["peak"], data["windows"]
            assert isinstance(tolerance, int | float) and isinstance(peak, int | float)
            assert isinstance(windows, int)
            # A state written before the broken alternative existed goes on from the null's.
            broken = data.get("broken") or {
                "logLikelihood": likelihood[NULL_INDEX],
                "forward": forward[NULL_INDEX],
                "belief": belief[NULL_INDEX],
            }
            assert isinstance(broken, dict)
            broken_forward, broken_belief = broken["forward"], broken["belief"]
            assert isinstance(broken_forward, list) and len(broken_forward) == len(_STATES)
            assert isinstance(broken_belief, list) and len(broken_belief) == 2
            return Evidence(
                tolerance=float(tolerance),
                log_likelihood=tuple(float(v) for v in likelihood),
                forward=tuple(tuple(float(v) for v in row) for row in forward),
                belief=tuple((float(pair[0]), float(pair[1])) for pair in belief),
                peak=float(peak),
                canary_requests=int(canary[0]),
                canary_bad=int(canary[1]),
                stable_requests=int(stable[0]),
                stable_bad=int(stable[1]),
                prior=Prior(float(prior[0]), float(prior[1])),
                windows=windows,
                broken_log_likelihood=float(broken["logLikelihood"]),
                broken_forward=tuple(float(v) for v in broken_forward),
                broken_belief=(float(broken_belief[0]), float(broken_belief[1])),
            )
        except (KeyError, AssertionError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(
                f"evidence is malformed ({exc!r}); expected {len(GRID)} ratios"
            ) from exc


def update(
    evidence: Evidence,
    canary: tuple[int, int],
    stable: tuple[int, int],
    seconds: float = 1.0,
) -> Evidence:
    """``evidence`` after one window of ``seconds`` with (requests, bad requests) of each
    version.

    The hidden states move once a second. A longer window (the controller catching up after
    downtime) is taken as that many seconds with its requests spread evenly: the model cannot
    tell a burst inside it, so it is judged as steady traffic."""
    (n_c, x_c), (n_s, x_s) = canary, stable
    totals = replace(
        evidence,
        canary_requests=evidence.canary_requests + n_c,
        canary_bad=evidence.canary_bad + x_c,
        stable_requests=evidence.stable_requests + n_s,
        stable_bad=evidence.stable_bad + x_s,
        windows=evidence.windows + 1,
    )
    if n_c + n_s == 0:
        return totals
    steps = max(1, round(seconds))
    for i in range(steps):
        totals = _second(
            totals,
            n_c / steps,
            _share(x_c, i, steps),
            n_s / steps,
            _share(x_s, i, steps),
        )
    return replace(totals, peak=max(totals.peak, totals.log_mixture))


def _share(count: int, index: int, parts: int) -> int:
    """The ``index``-th of ``parts`` nearly equal integer shares of ``count``."""
    return (count * (index + 1)) // parts - (count * index) // parts


def _second(evidence: Evidence, n_c: float, x_c: int, n_s: float, x_s: int) -> Evidence:
    """The forward algorithm's step for one second of counts."""
    if n_c + n_s == 0:
        return evidence
    counts = _Counts(n_c, x_c, n_s, x_s)
    likelihoods, forwards, beliefs = [], [], []
    for k, ratio in enumerate(GRID):
        step, posterior, belief = _track_second(
            counts, ratio * evidence.tolerance, evidence.forward[k], evidence.belief[k]
        )
        likelihoods.append(evidence.log_likelihood[k] + step)
        forwards.append(posterior)
        beliefs.append(belief)
    step, broken_forward, broken_belief = _track_second(
        counts, evidence.tolerance, evidence.broken_forward, evidence.broken_belief, endless=True
    )
    updated = replace(
        evidence,
        log_likelihood=tuple(likelihoods),
        forward=tuple(forwards),
        belief=tuple(beliefs),
        broken_log_likelihood=evidence.broken_log_likelihood + step,
        broken_forward=broken_forward,
        broken_belief=broken_belief,
    )
    return replace(updated, peak=max(updated.peak, updated.log_mixture))


@dataclass(frozen=True, slots=True)
class _Counts:
    """One second's counts, with the terms every track shares."""

    n_c: float
    x_c: int
    n_s: float
    x_s: int

    @property
    def burst_canary(self) -> float:
        return _burst(self.n_c, self.x_c)

    @property
    def canary_const(self) -> float:
        # Terms every hypothesis and every state share cancel in the ratios and are left out:
        # the stable's x_s log n_s - log x_s!, and the belief's shape log rate (added once).
        if self.n_c <= 0:
            return 0.0
        return self.x_c * math.log(self.n_c) - math.lgamma(self.x_c + 1)


def _track_second(
    counts: _Counts,
    r: float,
    old: tuple[float, ...],
    belief: tuple[float, float],
    endless: bool = False,
) -> tuple[float, tuple[float, ...], tuple[float, float]]:
    """One track's step (the canary's rate ``r`` times the stable's; ``endless``: a burst never
    ends): (the log likelihood of the second, the hidden states after it, the belief after it)."""
    start_spike, keep_spike, start_burst, keep_burst = _PER_SECOND
    if endless:
        keep_burst = 1.0
    calm_stays = 1.0 - sum(start_spike)
    end_spike = tuple(1.0 - keep for keep in keep_spike)
    quiet_burst, end_burst = 1.0 - start_burst, 1.0 - keep_burst
    n_c, x_c, n_s, x_s = counts.n_c, counts.x_c, counts.n_s, counts.x_s
    x = x_c + x_s
    log, exp = math.log, math.exp
    levels = _LEVELS
    shape, rate = belief
    shape, rate = shape * _FORGET, rate * _FORGET  # the level may drift
    exposure = r * n_c + n_s
    quiet_base = counts.canary_const + x_c * log(r) + _rising(shape, x)
    burst_base = counts.burst_canary + _rising(shape, x_s)
    # Predict: first the burst chain per level, then the level chain (calm may start any
    # spike; a spike goes on or ends). Both chains are independent.
    predicted = [0.0] * len(_STATES)
    calm_q = old[0] * quiet_burst + old[1] * end_burst
    calm_b = old[0] * start_burst + old[1] * keep_burst
    spike_q = spike_b = 0.0
    for i in range(1, len(levels)):
        q = old[2 * i] * quiet_burst + old[2 * i + 1] * end_burst
        b = old[2 * i] * start_burst + old[2 * i + 1] * keep_burst
        spike_q += q * end_spike[i - 1]
        spike_b += b * end_spike[i - 1]
        predicted[2 * i] = calm_q * start_spike[i - 1] + q * keep_spike[i - 1]
        predicted[2 * i + 1] = calm_b * start_spike[i - 1] + b * keep_spike[i - 1]
    predicted[0] = calm_q * calm_stays + spike_q
    predicted[1] = calm_b * calm_stays + spike_b
    # Emissions (logs), then the posterior of the hidden states.
    emissions = [0.0] * len(_STATES)
    top = -math.inf
    for i, level in enumerate(levels):
        log_level = _LOG_LEVELS[i]
        quiet = quiet_base + x * log_level - (shape + x) * log(rate + level * exposure)
        burst = burst_base + x_s * log_level - (shape + x_s) * log(rate + level * n_s)
        emissions[2 * i], emissions[2 * i + 1] = quiet, burst
        if predicted[2 * i] > 0.0 and quiet > top:
            top = quiet
        if predicted[2 * i + 1] > 0.0 and burst > top:
            top = burst
    weights = [
        p * exp(e - top) if p > 0.0 else 0.0 for p, e in zip(predicted, emissions, strict=True)
    ]
    total = sum(weights)
    floor = _TINY * total
    posterior = tuple(w / total if w > floor else 0.0 for w in weights)
    new_shape = new_rate = 0.0
    for i, level in enumerate(levels):
        quiet_p, burst_p = posterior[2 * i], posterior[2 * i + 1]
        new_shape += quiet_p * x + burst_p * x_s
        new_rate += level * (quiet_p * exposure + burst_p * n_s)
    step = top + log(total) + shape * log(rate)
    return step, posterior, (shape + new_shape, rate + new_rate)


def _transitions(
    seconds: float,
) -> tuple[tuple[float, ...], tuple[float, ...], float, float]:
    """Per-window probabilities: each shared change starts, each goes on; a burst starts, a
    burst goes on."""
    start = tuple(1.0 - math.exp(-seconds / every) for _, every, _ in SPIKES)
    keep = tuple(math.exp(-seconds / length) for _, _, length in SPIKES)
    start_burst = 1.0 - math.exp(-seconds / BURST_EVERY)
    keep_burst = math.exp(-seconds / BURST_LENGTH)
    return start, keep, start_burst, keep_burst


_PER_SECOND = _transitions(1.0)


def _burst(n: float, x: int) -> float:
    """Log probability of ``x`` bad requests of ``n`` during a burst: a mixture of binomials
    over :data:`BURST_SHARES`."""
    if n <= 0:
        return 0.0
    if x > n:  # more bad requests than requests (a long window spread over seconds)
        return -math.inf
    ratio = math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)  # log C(n, x)
    terms = [
        x * math.log(q) + (n - x) * math.log1p(-q) if q < 1.0 else (0.0 if x == n else -math.inf)
        for q in BURST_SHARES
    ]
    top = max(terms)
    if top == -math.inf:
        return -math.inf
    return ratio + top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))


def _rising(shape: float, count: int) -> float:
    """log Gamma(shape + count) - log Gamma(shape)."""
    if count == 0:
        return 0.0
    if count <= 8:
        return sum(math.log(shape + i) for i in range(count))
    return math.lgamma(shape + count) - math.lgamma(shape)


def _log_sum(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def _log_mean(values: Sequence[float]) -> float:
    return _log_sum(values) - math.log(len(values))
