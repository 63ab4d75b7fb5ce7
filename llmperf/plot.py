"""Charts of llmperf's DataFrames on a matplotlib ``ax``: roofline, time breakdown, memory vs
context, throughput-latency frontier.

Every helper takes the ``ax`` to draw on and a frame from the library (``ops_table``,
``memory_table``, ``sweep_frame``); nothing is estimated here. Only this module imports
matplotlib, and :func:`figure` builds figures without pyplot (the Agg canvas), so the CLI never
touches a GUI backend; in a notebook pass ``plt.subplots()`` axes instead.

Roofline: Williams, Waterman, Patterson, "Roofline: an insightful visual performance model for
multicore architectures", CACM 52(4), 2009: attainable FLOP/s = min(peak, bandwidth x intensity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter, NullFormatter

KIND_COLORS = {
    "gemm": "#1f77b4", "attention": "#d62728", "norm": "#2ca02c", "elementwise": "#9467bd",
    "embedding": "#8c564b", "communication": "#ff7f0e",
}
CEILING_STYLES = {"fp32": ":", "tf32": "-.", "bf16": "-", "fp16": "-", "fp8": "--",
                  "int8": "--", "int4": (0, (5, 1)), "fp4": (0, (5, 1))}
CEILING_COLORS = {"fp32": "#7f7f7f", "tf32": "#7f7f7f", "bf16": "#b22222", "fp16": "#b22222",
                  "fp8": "#6a3d9a", "int8": "#6a3d9a", "int4": "#b8860b", "fp4": "#b8860b"}
MEMORY_COLORS = {"weight_bytes": "#4c72b0", "kv_cache_bytes": "#dd8452",
                 "activation_bytes": "#55a868"}


def figure(ncols: int = 1, width_in: float = 7.5, height_in: float = 5.0, sharey=False):
    """A figure with ``ncols`` axes side by side, on the Agg canvas (no pyplot, no GUI)."""
    fig = Figure(figsize=(width_in * ncols, height_in), layout="constrained")
    axes = fig.subplots(1, ncols, sharey=sharey, squeeze=False)[0]
    return fig, list(axes)


def save(fig, path) -> Path:
    """Save ``fig`` to ``path`` (png, svg or pdf by suffix) through a temporary file beside it,
    so the file appears only once it is complete."""
    import os
    import tempfile

    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{kind}", dir=path.parent or ".")
    os.close(fd)
    try:
        fig.savefig(tmp, format=kind, dpi=150)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _eng(unit: str) -> EngFormatter:
    return EngFormatter(unit=unit, places=0, sep=" ")


def _tokens(value: float, _pos=None) -> str:
    """Token counts as model cards write them: 65536 -> ``64k``, 1048576 -> ``1M``."""
    if value >= 2**20 and value % 2**20 == 0:
        return f"{value / 2**20:g}M"
    if value >= 1024 and value % 1024 == 0:
        return f"{value / 1024:g}k"
    return f"{value:g}"


def _plain(value: float, _pos=None) -> str:
    return f"{value:g}"


def roofline_points(ops):
    """Plottable ops: x = (tensor + vector FLOPs) / bytes, y = those FLOPs / op time (FLOP/s).

    Ops without FLOPs or without memory traffic (embedding gathers, cache writes, collectives)
    have no place on log axes; they are returned separately so the chart can name them.
    """
    work = ops["flops"].to_numpy(float) + ops["vector_flops"].to_numpy(float)
    mem = ops["memory_bytes"].to_numpy(float)
    time = ops["time_s"].to_numpy(float)
    ok = (work > 0) & (mem > 0) & (time > 0)
    shown = ops[ok].assign(intensity=work[ok] / mem[ok], achieved_flop_per_s=work[ok] / time[ok])
    return shown, ops[~ok]


def ceilings(ops, hardware) -> dict[str, float]:
    """Peak FLOP/s per relevant dtype: bf16, every tensor dtype the ops compute in, fp32 vector."""
    dtypes = ["bf16"] + sorted({d for d in ops["compute_dtype"] if d not in ("bf16", "fp32")})
    out = {d: hardware.peak_flop_per_s(d) for d in dtypes}
    out["fp32"] = hardware.vector_flop_per_s
    return out


def measured_points(ax, rows, zorder: int = 3):
    """Kernel timings of a calibration as small hollow markers: x = FLOPs / bytes, y = FLOPs /
    measured time; one marker style per op kind (rows: calibration CSV rows with flops > 0)."""
    rows = rows[(rows["flops"] > 0) & (rows["bytes"] > 0)]
    markers = {"gemm": "s", "attention_prefill": "^", "attention_decode": "v"}
    for kind, group in rows.groupby("op_kind"):
        ax.scatter(group["flops"] / group["bytes"], group["flops"] / group["time_s"], s=10,
                   marker=markers.get(kind, "o"), facecolors="none", edgecolors="grey",
                   linewidths=0.6, alpha=0.6, zorder=zorder, label=f"measured {kind}",
                   gid=f"measured:{kind}")
    return len(rows)


def roofline(ax, ops, hardware, label_top: int = 5, title: str | None = None, measured=None):
    """Log-log roofline of one step: the memory slope, one ceiling per dtype with its ridge
    point, and every op as a point (colour = kind, area = share of step time). ``measured``:
    calibration rows drawn underneath (what our kernels achieved on this GPU)."""
    points, hidden = roofline_points(ops)
    bw = hardware.memory_bandwidth_bytes_per_s
    peaks = ceilings(ops, hardware)
    xs = np.concatenate([points["intensity"].to_numpy(), [p / bw for p in peaks.values()]])
    x_lo, x_hi = 10 ** np.floor(np.log10(xs.min() / 3)), 10 ** np.ceil(np.log10(xs.max() * 5))
    ax.set_xscale("log")
    ax.set_yscale("log")
    top = max(peaks.values())
    ax.plot([x_lo, top / bw], [bw * x_lo, top], color="black", lw=2.0,
            label=f"memory {bw / 1e12:.3g} TB/s", gid="memory")
    for dtype, peak in sorted(peaks.items(), key=lambda kv: -kv[1]):
        _ceiling(ax, dtype, peak, peak / bw, x_lo, x_hi)
    for kind, group in points.groupby("kind", sort=False):
        ax.scatter(group["intensity"], group["achieved_flop_per_s"],
                   s=25 + 900 * group["time_share"].to_numpy(), c=KIND_COLORS.get(kind, "grey"),
                   alpha=0.75, edgecolors="black", linewidths=0.5, zorder=5, label=kind,
                   gid=f"ops:{kind}")
    if measured is not None and len(measured):
        in_use = set(peaks) | {"w4a16", "w8a16"} if "bf16" in peaks else set(peaks)
        measured_points(ax, measured[measured["dtype"].isin(in_use)])
    y_lo = min(points["achieved_flop_per_s"].min(), bw * x_lo) / 3 if len(points) else bw * x_lo
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, top * 3)
    _label_heaviest(ax, points, label_top, 1 + len(peaks) + points["kind"].nunique(), bw)
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("attained performance (FLOP/s)")
    ax.yaxis.set_major_formatter(_eng("FLOP/s"))
    ax.grid(True, which="major", alpha=0.3)
    legend = ax.legend(loc="lower right", fontsize=8)
    for handle in legend.legend_handles:
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([30])
    ax.set_title(title or _roofline_title(ops), fontsize=10)
    if len(hidden):
        ax.text(0.01, 0.01, _hidden_note(hidden), transform=ax.transAxes, fontsize=7,
                ha="left", va="bottom", color="dimgrey")
    return ax


def _hidden_note(hidden) -> str:
    """``not on the chart: embed_tokens, kv_cache_write (no FLOPs); 3 collectives (link-bound)``."""
    comm = hidden["kind"] == "communication"
    parts = []
    if (~comm).any():
        parts.append(", ".join(hidden.loc[~comm, "op"].unique()) + " (no FLOPs)")
    if comm.any():
        parts.append(f"{comm.sum()} collectives (link-bound)")
    return "not on the chart: " + "; ".join(parts)


def _ceiling(ax, dtype: str, peak: float, ridge: float, x_lo: float, x_hi: float) -> None:
    """One compute ceiling from its ridge point to the right edge, labelled at the left (the
    region above the memory slope, where no op can be) with a faint guide to the axis."""
    style = CEILING_STYLES.get(dtype, "-")
    color = CEILING_COLORS.get(dtype, "black")
    name = "fp32 vector" if dtype == "fp32" else dtype
    ax.plot([ridge, x_hi], [peak, peak], color=color, lw=1.5, ls=style,
            label=f"{name} peak", gid=f"ceiling:{dtype}")
    ax.plot([x_lo, ridge], [peak, peak], color=color, lw=0.6, ls=style, alpha=0.35)
    ax.plot([ridge], [peak], marker="o", ms=5, mfc="white", mec=color, zorder=4,
            ls="none", gid=f"ridge:{dtype}")
    ax.annotate(f"{name} {peak / 1e12:.4g} TFLOP/s · ridge {ridge:.3g} FLOP/B", (x_lo, peak),
                xytext=(4, 2), textcoords="offset points", ha="left", va="bottom", fontsize=8,
                color=color)


def _clusters(points, n: int) -> list[list]:
    """The ``n`` ops with the largest time share, grouped when drawn at (almost) one spot."""
    clusters: list[list] = []
    for _, row in points.nlargest(n, "time_share").iterrows():
        xy = np.log10([row["intensity"], row["achieved_flop_per_s"]])
        for cluster in clusters:
            if np.all(np.abs(cluster[0] - xy) < 0.12):
                cluster[1].append(row)
                break
        else:
            clusters.append([xy, [row]])
    return [rows for _, rows in clusters]


def _label_heaviest(ax, points, n: int, n_legend: int, bw: float) -> None:
    """Name the heaviest ops; one boxed label per cluster of coinciding ops. Each label goes to
    the first candidate spot (below-right, below, below-left of its ops, then above) that stays
    inside the axes and under the memory roof (where no op can be) and overlaps neither an
    earlier label nor the legend. Positions are worked out in points on the axes."""
    fig_w, fig_h = ax.figure.get_size_inches()
    pos = ax.get_position()
    w_pt, h_pt = fig_w * 72 * pos.width, fig_h * 72 * pos.height
    (x0, x1), (y0, y1) = np.log10(ax.get_xlim()), np.log10(ax.get_ylim())

    def under_roof(box) -> bool:  # the box's top-left corner lies below the memory slope
        x_log = x0 + box[0] / w_pt * (x1 - x0)
        return y0 + box[3] / h_pt * (y1 - y0) <= np.log10(bw) + x_log

    taken = [(w_pt - 125, 0, w_pt, 12.5 * n_legend + 8)]  # legend, lower right
    for rows in _clusters(points, n):
        text = "\n".join(f"{r['op']} {100 * r['time_share']:.0f}%" for r in rows)
        px = (np.log10(rows[0]["intensity"]) - x0) / (x1 - x0) * w_pt
        py = (np.log10(rows[0]["achieved_flop_per_s"]) - y0) / (y1 - y0) * h_pt
        box_w = 4.4 * max(len(t) for t in text.split("\n")) + 8
        box_h = 10.5 * len(rows) + 6
        shift = {"left": 0.0, "center": box_w / 2, "right": box_w}
        candidates = [(dx, ha, dy) for dy in (-26, -56, -86, -116, -146, 30, 60)
                      for dx, ha in ((28, "left"), (0, "center"), (-28, "right"))]
        chosen = candidates[0]
        for dx, ha, dy in candidates:
            left = px + dx - shift[ha]
            box = (left, py + dy - box_h, left + box_w, py + dy)
            inside = box[0] >= 0 and box[2] <= w_pt and box[1] >= 0 and box[3] <= h_pt
            if inside and under_roof(box) and not any(_overlap(box, t) for t in taken):
                chosen = (dx, ha, dy)
                break
        dx, ha, dy = chosen
        left = px + dx - shift[ha]
        taken.append((left, py + dy - box_h, left + box_w, py + dy))
        ax.annotate(text, (rows[0]["intensity"], rows[0]["achieved_flop_per_s"]),
                    xytext=(dx, dy), textcoords="offset points", fontsize=7.5, va="top",
                    ha=ha, zorder=6,
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="lightgrey", alpha=0.9),
                    arrowprops=dict(arrowstyle="-", color="grey", lw=0.6))


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _roofline_title(ops) -> str:
    """``model on hardware · decode step (batch 8, 1,279 cached tokens): 4.53 ms``."""
    first = ops.iloc[0]
    total = ops["total_time_s"].sum()
    step = ""
    if "phase" in ops:
        if first["phase"] == "prefill":
            step = f" · prefill step (batch {first['batch']:.0f} x {first['q_len']:,.0f} tokens)"
        else:
            step = f" · decode step (batch {first['batch']:.0f}, {first['past_len']:,.0f} cached tokens)"
    return f"{first['model']} on {first['hardware']}{step}: {total * 1e3:.3g} ms"


def breakdown(ax, steps: dict):
    """Stacked bars of step time by op kind (percent), one bar per step; ``steps`` maps a label
    (``prefill``, ``decode``) to its per-op frame. The step time is written on each bar."""
    kinds = [k for k in KIND_COLORS if any((f["kind"] == k).any() for f in steps.values())]
    labels = [_step_label(name, frame) for name, frame in steps.items()]
    shares = {k: [] for k in kinds}
    for frame in steps.values():
        by_kind = frame.groupby("kind")["total_time_s"].sum()
        total = by_kind.sum()
        for k in kinds:
            shares[k].append(100 * by_kind.get(k, 0.0) / total if total else 0.0)
    bottom = np.zeros(len(labels))
    for k in kinds:
        ax.bar(labels, shares[k], bottom=bottom, color=KIND_COLORS[k], label=k, width=0.6,
               edgecolor="white", gid=f"kind:{k}")
        for i, v in enumerate(shares[k]):
            if v >= 4:
                ax.text(i, bottom[i] + v / 2, f"{v:.0f}%", ha="center", va="center",
                        fontsize=8, color="white")
        bottom += shares[k]
    for i, frame in enumerate(steps.values()):
        ax.text(i, 101, f"{frame['total_time_s'].sum() * 1e3:.3g} ms", ha="center",
                va="bottom", fontsize=9)
    ax.set_ylim(0, 110)
    ax.set_ylabel("share of step time (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    first = next(iter(steps.values())).iloc[0]
    ax.set_title(f"{first['model']} on {first['hardware']}: time by op kind", fontsize=10)
    return ax


def _step_label(name: str, frame) -> str:
    """``prefill\nbatch 8 x 2,048`` / ``decode\nbatch 8, 8,192 cached`` when the frame says."""
    if not {"batch", "q_len", "past_len"} <= set(frame.columns):
        return name
    first = frame.iloc[0]
    if first["past_len"] == 0:
        return f"{name}\nbatch {first['batch']:.0f} x {first['q_len']:,.0f} tokens"
    return f"{name}\nbatch {first['batch']:.0f}, {first['past_len']:,.0f} cached"


def memory(ax, frame):
    """Stacked areas of weights, KV cache and activations over context for one batch, with the
    usable-memory and capacity lines; ``frame`` is a ``memory_table`` of a single batch."""
    frame = frame.sort_values("context_len")
    ctx = frame["context_len"].to_numpy(float)
    layers = [frame[k].to_numpy(float) / 1e9 for k in MEMORY_COLORS]
    ax.stackplot(ctx, *layers, colors=list(MEMORY_COLORS.values()), alpha=0.85,
                 labels=["weights", "KV cache", "activations"])
    usable = frame["usable_memory_bytes"].iloc[0] / 1e9
    capacity = frame["memory_capacity_bytes"].iloc[0] / 1e9
    ax.axhline(capacity, color="black", lw=1.2, label=f"capacity {capacity:.3g} GB",
               gid="capacity")
    ax.axhline(usable, color="black", lw=1.0, ls="--", label=f"usable {usable:.3g} GB",
               gid="usable")
    limit = frame["max_context_len"].iloc[0]
    if ctx.min() <= limit <= ctx.max():
        ax.axvline(limit, color="red", lw=1, ls=":", label=f"max context {limit:,.0f}")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(_tokens))
    ax.set_xlim(ctx.min(), ctx.max())
    ax.set_ylim(0, max(capacity, (sum(layers)).max()) * 1.1)
    ax.set_xlabel("context (tokens per sequence)")
    ax.set_ylabel("memory per device (GB)")
    ax.legend(loc="upper left", fontsize=8)
    first = frame.iloc[0]
    ax.set_title(f"{first['model']} on {first['hardware']}: batch {first['batch']:.0f}, "
                 f"weights {first['weights']}, KV {first['kv_cache']}", fontsize=10)
    return ax


FRONTIER_KEYS = ["model", "hardware", "weights", "activations", "kv_cache", "tensor_parallel",
                 "pipeline_parallel"]


def frontier(ax, frame):
    """Throughput per device vs TPOT over batch, one line per (model, GPU, dtypes, TP);
    points that do not fit in memory are hollow. ``frame`` is a ``sweep_frame``."""
    varying = [k for k in FRONTIER_KEYS if frame[k].astype(str).nunique() > 1] or ["hardware"]
    for key, group in frame.groupby(FRONTIER_KEYS, sort=False):
        group = group.sort_values("batch")
        x = group["tpot_s"].to_numpy(float) * 1e3
        y = group["throughput_tokens_per_s"].to_numpy(float) / (group["tensor_parallel"].to_numpy(float)
                                                         * group["pipeline_parallel"].to_numpy(float))
        label = " ".join(str(dict(zip(FRONTIER_KEYS, key))[k]) for k in varying)
        (line,) = ax.plot(x, y, lw=1.2, label=label)
        fits = group["fits"].to_numpy(bool)
        ax.scatter(x[fits], y[fits], color=line.get_color(), s=18, zorder=3)
        ax.scatter(x[~fits], y[~fits], facecolors="none", edgecolors=line.get_color(), s=18,
                   zorder=3)
        for xi, yi, b in zip(x, y, group["batch"]):
            ax.annotate(f"{b:.0f}", (xi, yi), xytext=(3, 3), textcoords="offset points",
                        fontsize=7, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_plain))
    ax.xaxis.set_minor_formatter(FuncFormatter(_plain))
    ax.yaxis.set_major_formatter(_eng(""))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("TPOT (ms per output token, per user)")
    ax.set_ylabel("output throughput per device (tokens/s)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, title="labels = batch; hollow = does not fit", title_fontsize=7)
    first = frame.iloc[0]
    ax.set_title(f"{first['model']}: prompt {first['prompt_len']:.0f}, output "
                 f"{first['output_len']:.0f}", fontsize=10)
    return ax
