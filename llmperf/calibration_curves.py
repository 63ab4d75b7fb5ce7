"""The curve math of the calibration fit (llmperf/calibration_fit.py): isotonic regression, the
monotone efficiency curve over log(ideal time), and interpolation over log M inside the autotune
buckets of our Triton GEMMs.

Isotonic regression by pool-adjacent-violators (Ayer et al., Ann. Math. Statist. 1955).
"""

from __future__ import annotations

import dataclasses

import numpy as np

# efficiency = ideal / measured time is kept down to 1e-7: a latency-bound op (a 10 us top-k over
# a few hundred bytes) really runs at ~1e-5 of the bandwidth roofline
MIN_EFFICIENCY = 1e-7


def isotonic_increasing(y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Pool-adjacent-violators: the non-decreasing sequence closest to ``y`` in weighted L2."""
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    values, weights, sizes = [], [], []
    for yi, wi in zip(y, w):
        values.append(yi), weights.append(wi), sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            v2, w2, s2 = values.pop(), weights.pop(), sizes.pop()
            v1, w1, s1 = values.pop(), weights.pop(), sizes.pop()
            values.append((v1 * w1 + v2 * w2) / (w1 + w2)), weights.append(w1 + w2), sizes.append(s1 + s2)
    return np.repeat(values, sizes)


@dataclasses.dataclass(frozen=True)
class Curve:
    """Efficiency vs log(ideal time): knots (log_x, e), monotone, clamped outside the knots."""

    log_x: np.ndarray
    efficiency: np.ndarray
    points: int

    @classmethod
    def fit(cls, ideal_s: np.ndarray, efficiency: np.ndarray) -> "Curve":
        order = np.argsort(ideal_s)
        log_x = np.log(np.asarray(ideal_s, dtype=float)[order])
        fitted = isotonic_increasing(np.asarray(efficiency, dtype=float)[order])
        # one knot per pooled block: its mean log-size and its value
        knots_x, knots_y = [], []
        for value in np.unique(fitted):
            mask = fitted == value
            knots_x.append(log_x[mask].mean()), knots_y.append(value)
        order = np.argsort(knots_x)
        return cls(np.asarray(knots_x)[order], np.clip(np.asarray(knots_y)[order], MIN_EFFICIENCY, 1.0),
                   len(ideal_s))

    def __call__(self, ideal_s) -> np.ndarray:
        x = np.log(np.maximum(np.asarray(ideal_s, dtype=float), 1e-15))
        return np.interp(x, self.log_x, self.efficiency)


def triton_m_bucket(m):
    """Autotuning bucket of M in our Triton GEMMs (powers of two from 16 to 4096; the same rule
    as ``kernels/_common.py:m_bucket``, checked by tests/kernels/test_gemm.py): one config per
    bucket, so efficiency is smooth inside a bucket and may jump between buckets."""
    m = np.asarray(m, dtype=float)
    return np.clip(2.0 ** np.ceil(np.log2(np.maximum(m, 1.0))), 16.0, 4096.0)


def interp_in_buckets(m, log_m_knots, efficiency, bucket):
    """Interpolate efficiency over log M using only knots in M's own bucket (clamped inside the
    bucket); plain interpolation where the bucket holds no knot."""
    m = np.asarray(m, dtype=float)
    log_m = np.log(np.maximum(m, 1.0))
    out = np.interp(log_m, log_m_knots, efficiency)
    knot_bucket = bucket(np.exp(log_m_knots))
    m_bucket = bucket(m)
    for b in np.unique(knot_bucket):
        inside = knot_bucket == b
        sel = m_bucket == b
        if np.any(sel):
            out = np.where(sel, np.interp(log_m, log_m_knots[inside], efficiency[inside]), out)
    return out
