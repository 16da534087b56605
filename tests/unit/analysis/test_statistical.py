"""The sequential canary-vs-stable test: its arithmetic, its verdicts, and (by seeded
simulation) its two promises: few false alarms on a healthy canary, early stops on a bad one."""

from __future__ import annotations

import datetime
import math
import random

import pytest

from canarymesh.analysis.statistical import (
    LATENCY,
    RATIOS,
    SUCCESS,
    Evidence,
    bad_counts,
    judge,
    update,
)
from canarymesh.analysis.verdict import VerdictPhase
from canarymesh.analysis.windows import Counts, Window

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def window(canary: Counts, stable: Counts) -> Window:
    return Window(T0, T0 + datetime.timedelta(seconds=30), canary, stable)


def test_one_window_of_errors_updates_each_alternative_by_its_likelihood_ratio() -> None:
    evidence = update(Evidence(), (100, 3), (900, 2))
    # q = 0.1; for r = 2 the canary's share of errors would be 0.2 / 1.1.
    assert evidence.log_ratios[RATIOS.index(2.0)] == pytest.approx(1.6028906, abs=1e-6)
    assert evidence.log_mixture == pytest.approx(2.7983829, abs=1e-6)
    assert evidence.p_value == pytest.approx(math.exp(-2.7983829), rel=1e-6)
    assert (evidence.canary_requests, evidence.canary_bad) == (100, 3)
    assert (evidence.stable_requests, evidence.stable_bad) == (900, 2)


def test_windows_without_bad_requests_change_nothing_but_the_totals() -> None:
    evidence = update(Evidence(), (100, 0), (900, 0))
    assert evidence.log_ratios == Evidence().log_ratios and evidence.canary_requests == 100


def test_the_p_value_never_goes_back_up() -> None:
    evidence = update(Evidence(), (100, 5), (900, 1))
    calmer = update(evidence, (100, 0), (900, 9))
    assert calmer.log_mixture < evidence.log_mixture
    assert calmer.p_value == evidence.p_value


def test_verdicts_carry_rates_samples_and_p() -> None:
    _, failed = judge(SUCCESS, Evidence(), window(Counts(100, 12), Counts(900, 3)),
                      alpha=0.005, min_requests=50)  # fmt: skip
    assert failed.phase is VerdictPhase.FAILED
    assert failed.reason == (
        "request-success-rate canary errors 12.00% vs stable 0.33% (n=100/900), "
        "sequential p=7.4e-08 < alpha 0.005"
    )
    _, early = judge(SUCCESS, Evidence(), window(Counts(20, 0), Counts(180, 1)),
                     alpha=0.005, min_requests=50)  # fmt: skip
    assert early.phase is VerdictPhase.INCONCLUSIVE
    assert early.reason.endswith("not enough canary requests yet (20 < 50)")
    evidence, none = judge(SUCCESS, Evidence(), window(Counts(0, 0), Counts(180, 1)),
                           alpha=0.005, min_requests=50)  # fmt: skip
    assert none.phase is VerdictPhase.NO_DATA and evidence == Evidence()


def test_latency_counts_requests_above_the_pooled_p99_bucket() -> None:
    canary = Counts(100, 0, ((25.0, 70), (50.0, 90), (100.0, 100), (math.inf, 100)))
    stable = Counts(900, 0, ((25.0, 800), (50.0, 890), (100.0, 900), (math.inf, 900)))
    # Pooled: 1000 requests, 20 above 50 ms (2%), none above 100 ms: the bound is 50 ms.
    assert bad_counts(LATENCY, canary, stable) == (10, 10)
    assert bad_counts(SUCCESS, Counts(10, 1), Counts(10, 2)) == (1, 2)
    with pytest.raises(ValueError, match="same bucket bounds"):
        bad_counts(LATENCY, canary, Counts(1, 0, ((10.0, 1), (math.inf, 1))))
    with pytest.raises(ValueError, match="no test for queue"):
        bad_counts("queue", canary, stable)


def test_evidence_survives_json_and_refuses_garbage() -> None:
    evidence = update(Evidence(), (100, 5), (900, 1))
    assert Evidence.from_json(evidence.to_json()) == evidence
    with pytest.raises(ValueError, match="5 log ratios"):
        Evidence.from_json({**evidence.to_json(), "logRatios": [0.0]})


def _rollout(rng: random.Random, canary_rate: float, alpha: float) -> tuple[bool, int]:
    """Twelve 30 s windows at 20 rps and 10%..50% weight; (rejected, windows used)."""
    evidence = Evidence()
    for index in range(12):
        weight = (0.1, 0.25, 0.5)[index // 4]
        n_c = sum(rng.random() < weight for _ in range(600))
        canary = Counts(n_c, sum(rng.random() < canary_rate for _ in range(n_c)))
        n_s = 600 - n_c
        stable = Counts(n_s, sum(rng.random() < 0.005 for _ in range(n_s)))
        evidence, verdict = judge(SUCCESS, evidence, window(canary, stable),
                                  alpha=alpha, min_requests=1)  # fmt: skip
        if verdict.phase is VerdictPhase.FAILED:
            return True, index + 1
    return False, 12


def test_a_healthy_canary_is_rarely_rejected_and_a_bad_one_quickly() -> None:
    rng = random.Random(7)
    healthy = [_rollout(rng, 0.005, 0.05)[0] for _ in range(300)]
    # alpha 0.05 is an upper bound over the whole rollout; Ville's inequality is conservative.
    assert sum(healthy) <= 15
    bad = [_rollout(rng, 0.055, 0.005) for _ in range(50)]
    assert all(rejected for rejected, _ in bad)
    assert sorted(used for _, used in bad)[25] <= 4  # median: within two minutes


def test_a_suspicious_canary_is_watched_longer_instead_of_passing() -> None:
    # 4 of 100 canary requests failed against 1 of 900: not significant at 0.005 yet, but the
    # evidence is over 10 to 1, so the step must not pass on it.
    evidence, verdict = judge(SUCCESS, Evidence(), window(Counts(100, 4), Counts(900, 1)),
                              alpha=0.005, min_requests=50)  # fmt: skip
    assert verdict.phase is VerdictPhase.INCONCLUSIVE
    assert verdict.reason == (
        "request-success-rate canary errors 4.00% vs stable 0.11% (n=100/900), sequential "
        "p=0.0088 >= alpha 0.005, but the evidence against the canary is still 113 to 1 "
        "(>= 10): watching longer"
    )
    calm = window(Counts(300, 0), Counts(2700, 9))
    for _ in range(3):
        evidence, verdict = judge(SUCCESS, evidence, calm, alpha=0.005, min_requests=50)
    assert verdict.phase is VerdictPhase.SUCCESSFUL  # the evidence decayed: it may pass now


def test_tolerance_moves_the_null_hypothesis() -> None:
    # The canary has exactly twice the stable's rate of slow requests (2% vs 1%).
    twice = window(Counts(4000, 80), Counts(4000, 40))
    _, strict = judge(SUCCESS, Evidence(), twice, alpha=0.005, min_requests=1)
    assert strict.phase is VerdictPhase.FAILED
    _, tolerant = judge(SUCCESS, Evidence(), twice, alpha=0.005, min_requests=1, tolerance=2.0)
    assert tolerant.phase is VerdictPhase.SUCCESSFUL
    assert "(tolerance 2x)" in tolerant.reason
    six = window(Counts(4000, 240), Counts(4000, 40))
    _, beyond = judge(SUCCESS, Evidence(), six, alpha=0.005, min_requests=1, tolerance=2.0)
    assert beyond.phase is VerdictPhase.FAILED
