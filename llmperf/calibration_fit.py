"""Fit measured efficiencies into smooth monotone curves and serve them to the cost model.

For every measured kernel run, the ideal roofline time is t_ideal = max(F / P, B / W) with the
datasheet peak P of its dtype and the datasheet bandwidth W; the run is *compute*-regime when
F / P is the larger term, else *memory*-regime. Its efficiency is e = t_ideal / (t - t_launch),
clamped to (0, 1], where t_launch is the measured per-kernel floor. Per (op kind, dtype, kernel
source, regime) e is fitted as a non-decreasing function of log(t_ideal) (isotonic regression by
pool-adjacent-violators, Ayer et al. 1955; bigger problems fill the machine better), then
interpolated linearly between block centres in log space and clamped at the measured range.

Using t_ideal (not raw FLOPs or bytes) as the size feature makes the curves dimensionless in
both axes, so they transfer to another GPU of the same family: a problem that takes the same
ideal time on a faster GPU is assumed to reach the same efficiency (``transferred:<from>``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmperf.calibration_curves import MIN_EFFICIENCY, Curve, interp_in_buckets, triton_m_bucket
from llmperf.errors import SpecError
from llmperf.ops.op import ATTENTION, COMMUNICATION, GEMM, NORM, Op
from llmperf.specs.hardware import HardwareSpec

MIN_POINTS = 3
IMPOSSIBLE_SPEEDUP = 1.25  # measured faster than 1.25x the datasheet roofline: a glitch, dropped
# grouped (MoE) GEMMs: per-shape curves over the ideal time, not over rows per expert (the same
# rows per expert can touch 8 or 16 experts, i.e. twice the weight bytes)
IDEAL_TIME_SHAPE_CURVE = ("cutlass_grouped",)
# weight-only GEMM dtypes (x in bf16/fp16, W dequantized in the kernel): see efficiencies()
WEIGHT_ONLY = ("w4a16", "w8a16")
# diagnostic rows (burst vs sustained GEMM) are not curves of their own
DIAGNOSTIC_SOURCES = ("cublas_burst", "cublas_sustained")


def _peak_for(hardware: HardwareSpec, dtype: str) -> float:
    return hardware.peak_flop_per_s(_peak_dtype(dtype))


def annotate(frame: pd.DataFrame, hardware: HardwareSpec, launch_s: float) -> pd.DataFrame:
    """Add ideal times, regime and efficiency to measured rows (not launch or diagnostic rows)."""
    rows = frame[(frame["op_kind"] != "launch")
                 & ~frame["kernel_source"].isin(DIAGNOSTIC_SOURCES)].copy()
    peaks = rows["dtype"].map(lambda d: _peak_for(hardware, d) if d != "none" else np.inf)
    rows["compute_ideal_s"] = rows["flops"] / peaks
    rows["memory_ideal_s"] = rows["bytes"] / hardware.memory_bandwidth_bytes_per_s
    rows["regime"] = np.where(rows["compute_ideal_s"] >= rows["memory_ideal_s"], "compute", "memory")
    rows["ideal_s"] = rows[["compute_ideal_s", "memory_ideal_s"]].max(axis=1)
    kernels = rows["kernels"] if "kernels" in rows else 1.0
    busy = np.maximum(rows["time_s"] - kernels * launch_s, rows["time_s"] * 0.05)
    rows["efficiency"] = np.clip(rows["ideal_s"] / busy, MIN_EFFICIENCY, 1.0)
    # a timing glitch (a kernel that did not run, a graph that replayed nothing) shows up as a
    # run faster than the datasheet allows; such rows are not physics, drop them
    return rows[rows["ideal_s"] <= IMPOSSIBLE_SPEEDUP * rows["time_s"]]


def fit_curves(rows: pd.DataFrame) -> dict:
    """{(op_kind, dtype, kernel_source, regime): Curve} for groups with enough points."""
    curves = {}
    for key, group in rows.groupby(["op_kind", "dtype", "kernel_source", "regime"]):
        if len(group) >= MIN_POINTS:
            curves[key] = Curve.fit(group["ideal_s"].to_numpy(), group["efficiency"].to_numpy())
    return curves


def launch_floor_s(frame: pd.DataFrame, mode: str) -> float:
    """Median measured time of an (almost) empty kernel, eager or replayed in a CUDA graph."""
    rows = frame[(frame["op_kind"] == "launch") & (frame["layout"] == mode)]
    return float(rows["time_s"].median()) if len(rows) else 0.0


def sustained_factor(frame: pd.DataFrame) -> float:
    """Burst time / sustained time of the same large GEMMs (<= 1; 1 when not measured).

    The calibration times each kernel in short bursts; a long prefill runs GEMMs back to back for
    tens to hundreds of milliseconds, and tensor-core clocks drop under that sustained load
    (measured: 0.87 on the H100 and 0.91 on the H200 of this repo, median of three shapes). The
    factor scales the compute efficiency of GEMM and attention work in the cost model.
    """
    burst = frame[frame["kernel_source"] == "cublas_burst"].set_index(["m", "n", "k"])["time_s"]
    sustained = frame[frame["kernel_source"] == "cublas_sustained"].set_index(["m", "n", "k"])["time_s"]
    ratio = (burst / sustained).dropna()
    return float(min(np.median(ratio), 1.0)) if len(ratio) else 1.0


# kernels timed as whole torch-op sequences (kernel_source torch_ops): their own curves, since an
# 8-kernel fp32 RMSNorm and a 5-kernel rotate_half RoPE stream bytes at different rates, the MoE
# routing steps (top-k; sort + scan into group offsets) are latency-bound, and the MoE row
# gather / index_copy scatter stream at their own (low) rates
MOE_TORCH_OPS = ("router_topk", "experts_sort", "experts_permute", "experts_unpermute", "experts_combine")
TORCH_OP_SHAPES = ("torch_rmsnorm", "torch_rope") + tuple(f"torch_{name}" for name in MOE_TORCH_OPS)
# op name -> its torch-op curve (the norm ops are matched by kind)
TORCH_OP_OF = {"rope": "torch_rope", **{name: f"torch_{name}" for name in MOE_TORCH_OPS}}


def shape_key(op_kind: str, n=None, k=None, head_dim=None, name=None):
    """What makes two measurements the same kernel shape: (N, K) of a GEMM, head_dim of
    attention, the op sequence of a timed torch-op memory kernel; other memory kernels none."""
    if op_kind == "gemm":
        return (int(n), int(k))
    if op_kind.startswith("attention"):
        return int(head_dim)
    return name if name in TORCH_OP_SHAPES else None


def fit_shape_curves(rows: pd.DataFrame) -> dict:
    """Per-shape efficiency knots: GEMM (N, K) over log M (interpolated, not forced monotone:
    the regime changes with M; grouped GEMMs over log(ideal time)); attention per head_dim over
    log(ideal time), isotonic."""
    curves = {}
    gemm = rows[rows["op_kind"] == "gemm"]
    for (dtype, source, n, k), sub in gemm.groupby(["dtype", "kernel_source", "n", "k"]):
        feature = "ideal_s" if source in IDEAL_TIME_SHAPE_CURVE else "m"
        by_x = sub.groupby(feature)["efficiency"].mean()
        if len(by_x) >= 2:
            curves[("gemm", dtype, source, shape_key("gemm", n, k))] = Curve(
                np.log(by_x.index.to_numpy(dtype=float)), by_x.to_numpy(), len(sub))
    ops = rows[(rows["op_kind"] == "memory") & rows["name"].isin(TORCH_OP_SHAPES)]
    for (dtype, source, name), sub in ops.groupby(["dtype", "kernel_source", "name"]):
        if len(sub) >= MIN_POINTS:
            curves[("memory", dtype, source, shape_key("memory", name=name))] = Curve.fit(
                sub["ideal_s"].to_numpy(), sub["efficiency"].to_numpy())
    attention = rows[rows["op_kind"].str.startswith("attention")]
    for (kind, dtype, source, head_dim), sub in attention.groupby(
            ["op_kind", "dtype", "kernel_source", "head_dim"]):
        if len(sub) >= MIN_POINTS:
            curves[(kind, dtype, source, shape_key(kind, head_dim=head_dim))] = Curve.fit(
                sub["ideal_s"].to_numpy(), sub["efficiency"].to_numpy())
    return curves


class MeasuredCalibration:
    """Efficiency curves measured on one GPU (or transferred from one) for the cost model.

    Lookup order for an op: (1) the curve of its exact shape (a GEMM's (N, K) over M, an
    attention's head_dim over size) from the preferred kernel source; (2) the regime curves of
    its op kind and dtype (compute efficiency over compute ideal time, memory efficiency over
    memory ideal time); (3) the memory-bound kernels' bandwidth curve for memory-regime terms;
    (4) 1.0. Norm, RoPE, activation, embedding and cache-write ops use the bandwidth curve.
    """

    SOURCES = ("triton", "cublas", "sdpa", "cublas_scaled_mm", "torch", "torch_ops", "cutlass_grouped")

    def __init__(self, frame: pd.DataFrame, hardware: HardwareSpec, name: str,
                 kernel_source: str = "triton", launch_mode: str = "graph",
                 measured_on: HardwareSpec | None = None):
        self.name = name
        self.kernel_source = kernel_source
        self.source_hardware = measured_on or hardware
        self.overhead_s = launch_floor_s(frame, launch_mode)
        # inside a captured step the next launch is prepared while the previous kernel drains:
        # the in-sequence gap (measured over back-to-back empty kernels) is what a kernel adds
        # there; the isolated floor (what every timed calibration row paid) stays the one the
        # fit subtracts
        self.sequence_overhead_s = (launch_floor_s(frame, f"{launch_mode}_sequence")
                                    or self.overhead_s)
        self.eager_launch_s = launch_floor_s(frame, "eager")
        self.eager_step_s = 0.0
        self.sustained_factor = sustained_factor(frame)
        self.launch_floors = {mode: launch_floor_s(frame, mode)
                              for mode in frame.loc[frame["op_kind"] == "launch", "layout"].unique()}
        self.source_by_kind: dict = {}
        self.source_by_name: dict = {}
        self._launch_rows = frame[frame["op_kind"] == "launch"]
        self.rows = annotate(frame, self.source_hardware, self.overhead_s)
        self.curves = fit_curves(self.rows)
        self.shape_curves = fit_shape_curves(self.rows)
        if not self.curves and not self.shape_curves:
            raise SpecError(f"{name}: too few measurements to fit any efficiency curve "
                            f"(need {MIN_POINTS} per op kind, dtype and regime)")

    def _sources(self, first: str | None = None):
        first = first or self.kernel_source
        return (first,) + tuple(s for s in self.SOURCES if s != first)

    def _regime_curve(self, op_kind: str, dtype: str, regime: str, source_first=None):
        for source in self._sources(source_first):
            for dt in dict.fromkeys((dtype, "bf16")):
                curve = self.curves.get((op_kind, dt, source, regime))
                if curve is not None:
                    return curve
        if regime == "memory" and op_kind != "memory":
            return self._regime_curve("memory", "bf16", "memory", source_first)
        return None

    def efficiencies(self, op_kind: str, dtype: str, skey, m, compute_ideal_s, memory_ideal_s,
                     source: str | None = None):
        """(compute efficiency, memory efficiency) for kernels of this kind/dtype/shape, from
        ``source`` (default: the calibration's kernel source) first."""
        # a memory kernel's shape curve is one op sequence of one source (HF-style RMSNorm in
        # torch ops): never lend it to an engine that runs another kernel for the op
        candidates = self._sources(source)[:1] if op_kind == "memory" else self._sources(source)
        for candidate in candidates:
            curve = self.shape_curves.get((op_kind, dtype, candidate, skey))
            if curve is not None:
                if op_kind != "gemm" or candidate in IDEAL_TIME_SHAPE_CURVE:
                    e = curve(np.maximum(compute_ideal_s, memory_ideal_s))
                    return e, e
                e = self._gemm_m_efficiency(curve, candidate, m)
                if dtype in WEIGHT_ONLY:
                    # beyond the weight-only rows' token range (the bundled files' re-measured shapes reach
                    # M = 16384, the others stop at M = 16 since session 11): the bf16 GEMM efficiency of the shape from the source the engine runs bf16
                    # GEMMs on, since with many tokens a weight-only GEMM runs as a dequantization plus a
                    # bf16 GEMM (kernels/gemm_w4a16_dq.py; exllama), compute-bound
                    for wide_source in dict.fromkeys(self._sources(source)[:1] + (candidate,)):
                        wide = self.shape_curves.get((op_kind, "bf16", wide_source, skey))
                        if wide is not None and wide.log_x.max() > curve.log_x.max():
                            beyond = np.log(np.maximum(m, 1.0)) > curve.log_x.max() + 1e-9
                            e = np.where(beyond, self._gemm_m_efficiency(wide, wide_source, m), e)
                            break
                return e, e
        c_curve = None if op_kind == "memory" else self._regime_curve(op_kind, dtype, "compute", source)
        m_curve = self._regime_curve(op_kind, dtype, "memory", source)
        c_curve = c_curve or m_curve
        m_curve = m_curve or c_curve
        e_c = c_curve(compute_ideal_s) if c_curve is not None else 1.0
        e_m = m_curve(memory_ideal_s) if m_curve is not None else 1.0
        return e_c, e_m

    @staticmethod
    def _gemm_m_efficiency(curve, candidate: str, m):
        """A GEMM shape curve over log M: within Triton's autotune buckets for our kernels, else linear."""
        if candidate == "triton":
            return interp_in_buckets(m, curve.log_x, curve.efficiency, triton_m_bucket)
        return np.interp(np.log(np.maximum(m, 1.0)), curve.log_x, curve.efficiency)

    # -- the Calibration protocol ----------------------------------------------------------------
    @staticmethod
    def _describe(op: Op):
        if op.kind == GEMM:
            dtype = op.compute_dtype
            if op.weight_dtype.startswith("int4") and op.compute_dtype in ("bf16", "fp16"):
                dtype = "w4a16"
            elif op.weight_dtype == "int8" and op.compute_dtype in ("bf16", "fp16"):
                dtype = "w8a16"
            m = op.shape.get("rows_per_expert", op.shape.get("m", 1.0))
            n = op.shape.get("n_per_head", op.shape.get("n", 0))
            return "gemm", dtype, shape_key("gemm", n, op.shape.get("k", 0)), m
        if op.kind == ATTENTION:
            prefill = np.any(np.asarray(op.shape.get("q_len", 1)) > 1)
            kind = "attention_prefill" if prefill else "attention_decode"
            return kind, "bf16", shape_key(kind, head_dim=op.shape.get("qk_dim", 0)), None
        if op.kind == NORM:
            return "memory", "bf16", "torch_rmsnorm", None
        return "memory", "bf16", TORCH_OP_OF.get(op.name), None

    def for_engine(self, engine) -> "MeasuredCalibration":
        """This calibration with the engine's kernel source per op kind (shallow copy)."""
        import copy

        clone = copy.copy(self)
        clone.source_by_kind = dict(engine.kernel_sources)
        clone.source_by_name = {name: rule.source for name, rule in engine.rules.items() if rule.source}
        # a host rate measured on the host at hand wins; an engine whose own host rate was not
        # measured falls back to eager torch's, then to the bare launch floor
        for mode in dict.fromkeys((engine.host_launch, "torch_eager")):
            if mode in self.launch_floors:
                clone.eager_launch_s = self.launch_floors[mode]
                clone.eager_step_s = self.launch_floors.get(f"{mode}_step", 0.0)
                break
        if self.host_override is not None:
            per_kernel, per_step = self.host_override
            clone.eager_launch_s = per_kernel
            clone.eager_step_s = clone.eager_step_s if per_step is None else per_step
        return clone

    def with_host_rate(self, per_kernel_s: float, per_step_s: float | None) -> "MeasuredCalibration":
        """This calibration with the eager host rate of another host (seconds per kernel and
        per step, measured by the same tiny-model microbenchmark on the CPU that will run the
        engine): the host rate belongs to the CPU, the efficiency curves to the GPU.
        ``per_step_s`` None keeps the calibration's own per-step time of the engine."""
        import copy

        if not (np.isfinite(per_kernel_s) and per_kernel_s > 0):
            return self
        clone = copy.copy(self)
        step = None if per_step_s is None else (
            float(per_step_s) if np.isfinite(per_step_s) and per_step_s > 0 else 0.0)
        clone.host_override = (float(per_kernel_s), step)
        clone.eager_launch_s = float(per_kernel_s)
        clone.eager_step_s = getattr(self, "eager_step_s", 0.0) if step is None else step
        return clone

    def _op_efficiencies(self, op: Op, hardware: HardwareSpec):
        kind, dtype, skey, m = self._describe(op)
        source = self.source_by_name.get(op.name) or self.source_by_kind.get(kind)
        peak = hardware.peak_flop_per_s("bf16" if op.compute_dtype == "fp32" else op.compute_dtype)
        compute_ideal = (op.flops + op.vector_flops) / peak
        memory_ideal = op.memory_bytes / hardware.memory_bandwidth_bytes_per_s
        if kind == "memory":
            e_c, e_m = self.efficiencies(kind, dtype, skey, m, compute_ideal, memory_ideal, source)
            return 1.0, e_m
        return self.efficiencies(kind, dtype, skey, m, compute_ideal, memory_ideal, source)

    load_share = 1.0  # share of the step's time the tensor cores are loaded (see at_load)

    def at_load(self, share) -> "MeasuredCalibration":
        """This calibration for a step whose compute-bound ops take ``share`` (0..1, may be an
        array over the grid) of its time. The sustained-load slowdown comes from clocks dropping
        under the power limit while tensor cores stay busy (SM clock 1980 -> ~1450 MHz measured
        on H100/H200 by the calibration); a step that mostly streams memory draws less power
        and keeps its clocks, so the slowdown is scaled by the loaded share:
        factor = 1 - (1 - sustained_factor) x share (first order in power)."""
        import copy

        clone = copy.copy(self)
        clone.load_share = np.clip(np.asarray(share, dtype=float), 0.0, 1.0)
        return clone

    def compute_efficiency(self, op: Op, hardware: HardwareSpec):
        if op.kind == COMMUNICATION:
            return 1.0
        e_c = self._op_efficiencies(op, hardware)[0]
        factor = 1.0 - (1.0 - self.sustained_factor) * self.load_share
        return e_c * factor if op.kind in (GEMM, ATTENTION) else e_c

    def memory_efficiency(self, op: Op, hardware: HardwareSpec):
        return 1.0 if op.kind == COMMUNICATION else self._op_efficiencies(op, hardware)[1]

    def communication_efficiency(self, op: Op, hardware: HardwareSpec):
        return 1.0

    def kernel_overhead_s(self, op: Op, hardware: HardwareSpec) -> float:
        return self.sequence_overhead_s

    bands: dict | None = None
    host_override: tuple | None = None  # (s per kernel, s per step) from with_host_rate

    def interval(self, cost):
        """(low, high) step time from the held-out residual bands of each op's kernel kind.

        A kernel whose prediction errs by e (predicted/measured - 1, p10..p90 over held-out
        calibration points) really takes predicted / (1 + e); errors of one kind are assumed to
        move together (the conservative choice), overheads carry no band.
        """
        if self.bands is None:
            from llmperf.calibration_io import residual_bands

            self.bands = residual_bands(pd.concat([self.rows, self._launch_rows]), self.source_hardware)
        low = high = 0.0
        for op, time, overhead in zip(cost.ops, cost.time_s, cost.overhead_s):
            kind = "memory" if op.kind == COMMUNICATION else self._describe(op)[0]
            e10, e90 = self._band(kind)
            busy = op.count * (time - overhead)
            low = low + busy / (1 + e90) + op.count * overhead
            high = high + busy / (1 + e10) + op.count * overhead
        return low, high

    def _band(self, kind: str):
        for source in self._sources():
            band = self.bands.get(f"{kind}|{source}")
            if band is not None:
                return band
        return (0.0, 0.0)


def predict_rows(calibration: MeasuredCalibration, rows: pd.DataFrame) -> np.ndarray:
    """Predicted kernel times for annotated measurement rows under a fitted calibration."""
    out = np.empty(len(rows))
    for i, (_, row) in enumerate(rows.iterrows()):
        skey = shape_key(row["op_kind"], row["n"], row["k"], row["head_dim"], row["name"])
        e_c, e_m = calibration.efficiencies(row["op_kind"], row["dtype"], skey, row["m"],
                                            row["compute_ideal_s"], row["memory_ideal_s"],
                                            source=row["kernel_source"])
        if row["op_kind"] == "memory":
            e_c = 1.0
        kernels = row["kernels"] if "kernels" in row and row["kernels"] == row["kernels"] else 1.0
        out[i] = (max(row["compute_ideal_s"] / e_c, row["memory_ideal_s"] / e_m)
                  + kernels * calibration.overhead_s)
    return out


# What identifies a measured point: its fold is a hash of these, so adding or replacing rows (a merged
# partial sweep) leaves every other point in its fold; their held-out errors then move only by what the
# new rows add to the fits (row-order folds reshuffled every point after an insertion).
POINT_IDENTITY = ["kernel_source", "op_kind", "name", "dtype", "m", "n", "k", "batch", "q_len", "kv_len",
                  "q_heads", "kv_heads", "head_dim", "layout"]
FOLD_METHOD = "crc32(point identity) mod k"


def fold_of(rows: pd.DataFrame, folds: int, seed: int = 0) -> np.ndarray:
    """Fold of each row: CRC-32 of ``seed`` and the row's :data:`POINT_IDENTITY` values, mod ``folds``."""
    import numbers
    import zlib

    def text(value) -> str:  # 16 and 16.0 (a column that gained a NaN) are the same point
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            return repr(float(value)) if value == value else ""
        return "" if value is None else str(value)

    keys = ["|".join(map(text, row)) for row in rows.reindex(columns=POINT_IDENTITY).itertuples(index=False)]
    return np.fromiter((zlib.crc32(f"{seed}|{key}".encode()) % folds for key in keys), dtype=int,
                       count=len(keys))


def held_out_errors(frame: pd.DataFrame, hardware: HardwareSpec, folds: int = 5,
                    seed: int = 0) -> pd.DataFrame:
    """k-fold: fit on k-1 folds, predict the left-out rows; returns rows with ``error`` =
    predicted / measured - 1. Never evaluates a point that its own fit saw. Folds are by point
    identity (:func:`fold_of`), not row order."""
    measured = frame[frame["op_kind"] != "launch"]
    launch = frame[frame["op_kind"] == "launch"]
    fold_of_row = fold_of(measured, folds, seed)
    parts = []
    for f in range(folds):
        train = pd.concat([measured[fold_of_row != f], launch])
        test = measured[fold_of_row == f]
        if test.empty:
            continue
        cal = MeasuredCalibration(train, hardware, "k-fold")
        rows = annotate(test, hardware, cal.overhead_s)
        rows["predicted_s"] = predict_rows(cal, rows)
        parts.append(rows)
    out = pd.concat(parts)
    out["error"] = out["predicted_s"] / out["time_s"] - 1.0
    return out


def _peak_dtype(dtype: str) -> str:
    return {"w4a16": "bf16", "w8a16": "bf16"}.get(dtype, dtype)
