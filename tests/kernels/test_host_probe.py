"""The host-rate probe's arithmetic (kernels/calibrate_extra.py HostRateProbe) and the runner's
per-point rate (kernels/measure_e2e.py Runner.host_rate), on synthetic timings (CPU)."""

import pytest

from llmperf_kernels.calibrate_extra import HostRateProbe
from llmperf_kernels.measure_e2e import Runner


def _probe(k_small=80, k_large=320):
    probe = object.__new__(HostRateProbe)  # the arithmetic only: no tiny models are built
    probe.kernels = [k_small, k_large]
    return probe


def test_rate_is_the_slope_and_intercept_of_the_two_models():
    probe = _probe()
    # 20 us per kernel, 300 us per step: small 80 kernels -> 1.9 ms, large 320 -> 6.7 ms
    per_kernel, per_step = probe.rate((300e-6 + 80 * 20e-6, 300e-6 + 320 * 20e-6))
    assert per_kernel == pytest.approx(20e-6) and per_step == pytest.approx(300e-6)
    # an intercept lost in the noise is clipped at zero, never negative
    assert probe.rate((80 * 20e-6 - 1e-5, 320 * 20e-6))[1] == 0.0


def test_rate_of_interleaved_samples_takes_each_models_median():
    probe = _probe()
    samples = [(80 * r, 320 * r) for r in (10e-6, 20e-6, 30e-6, 20e-6, 500e-6)]  # one outlier
    per_kernel, per_step = probe.rate(samples)
    assert per_kernel == pytest.approx(20e-6) and per_step == pytest.approx(0.0, abs=1e-12)


def test_runner_reports_the_rate_and_spread_over_the_point():
    runner = object.__new__(Runner)
    runner.probe = _probe()
    runner.host_samples = [(80 * r, 320 * r) for r in (10e-6, 20e-6, 30e-6)]
    per_kernel, per_step, spread_pct = runner.host_rate()
    assert per_kernel == pytest.approx(20e-6)
    # p90 - p10 by rank, rounded down (the committed rows' definition): ranks 1 and 0 of 3
    assert spread_pct == pytest.approx((20e-6 - 10e-6) / 20e-6 * 100)
    runner.probe = None  # no GPU: no rate, never a made-up one
    assert all(v != v for v in runner.host_rate())
