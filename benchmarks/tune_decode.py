"""Variant comparison for decode attention (llmperf_kernels.attention_decode): splits, tile, combine.

For the decode cases of ``kernels_bench.bench_decode`` that carry a target (Hq=32, Hkv=8, D=128,
q_len=1; B x L >= 64k tokens, or B=1 with L >= 32k), time explicitly forced launch configurations
(``attention_decode(..., config=DecodeConfig(block_n, num_warps, num_stages, splits, combine, swap))``):

  * ``v3``      run 4's behaviour: splits = ceil(2*SMs / (B*Hkv)) capped by ceil(L/256) and 128,
                separate combine kernel, tile (64, 4 warps, 3 stages) (fp8: same tile).
  * ``tile``    stage A: tile candidates (block_n, warps, stages) x swap-AB {off, on} at the
                heuristic split count (``default_splits``), combine kernel.
  * ``split``   stage B: with stage A's fastest tile, split counts {heuristic/2, heuristic,
                2 x heuristic} (or {1, 2, 4, 8} where the heuristic says 1), deduplicated by the
                effective count, x combine {kernel, pdl, fused}.
  * ``nocomb``  (B=1 cases, probe) stage B's fastest split launch with the combine kernel patched
                out: the split kernel alone, so best - nocomb = what the merge costs. Its output is
                not merged (not checked, never "best").

  * ``flat``    (v7) the persistent flat split kernel (``DecodeConfig.persist`` programs per SM over
                the flattened (sequence, KV head, tile) space, :mod:`llmperf_kernels.attention_decode_split`)
                over FLAT_TILES with the combine kernel, then its fastest with "pdl"; probes at the
                fastest: ``flat_lazy`` (EAGER loads off: masks from kv_lens as the grid kernel) and
                ``flat_nocomb`` (combine patched out, output not merged).
  * ``default`` the wrapper's own choice (no config; autotuned as in kernels_bench), the baseline;
                ``default_v7`` the same with ``_FLAT_SPLIT_REGIME`` on (the tuner also tries the flat
                kernel where the heuristic splits, flat candidates first).
  * ``repeat:*`` with ``--repeat N``: default, the fastest grid variant and the fastest flat variant
                re-timed N times in turn (run-to-run spread; medians in the summary).

v8 (``--combine-ab``): how the slices are merged, at the default's own tile and heuristic splits:
``ab:nocomb`` (the split kernel alone, merge patched out), ``ab:kernel`` (second launch), ``ab:pdl``
(second launch as a programmatic dependent launch), ``ab:fused_v6`` (last-arriving program merges with
v6's ``_combine_rows``) and ``ab:fused`` (v8's ``_merge_group``); plus ``default_fused``, the wrapper's
tuned choice with ``_DEFAULT_COMBINE = "fused"``. With ``--repeat N`` these (and ``default``) are
re-timed N times in alternation. ``--no-flat`` skips the v7 flat kernel, ``default_v7`` and ``v3``.

v6: fp8 tiles carry ``cvt`` (0: Triton's convert; 1: V, 2: K and V converted by inline PTX
right after the load, :func:`llmperf_kernels.attention_decode_combine.e4m3_to_f16`); B=1 cases
also try shorter pipelines ((64, 4, 3), (64, 4, 2), (32, 4, 4)).

Each row: time (CUDA-graph timing, ``harness.time_fn(graph=True)`` as kernels_bench's T()), GB/s
(bytes = ``attention_decode_bytes``), fraction of a torch copy bandwidth measured here (1 GiB and
256 MiB device copies, graph- and eager-timed, fastest -- a graph-captured memcpy can land on the
copy engine), and time / floor (floor = bytes / copy BW). Every variant's output is checked
against ``attention_decode_ref`` (relative error <= 1e-2). Writes ``tune_decode.csv`` (one row per
variant, device metadata from ``harness.device_metadata()`` on every row). About 60 s on an H200.

    python benchmarks/tune_decode.py --out out/
    TRITON_INTERPRET=1 python benchmarks/tune_decode.py --smoke --out /tmp/td   # CPU plumbing check
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import itertools
import os
import sys
import time

import torch
import triton

import llmperf_kernels as lk
from llmperf_kernels._common import rel_err
from llmperf_kernels._common import sm_count
from llmperf_kernels.attention_decode import (DecodeConfig, attention_decode_bytes, default_splits,
                                              random_decode_inputs)
from llmperf_kernels import attention_decode_split as flat_mod

ad_mod = importlib.import_module("llmperf_kernels.attention_decode")  # the module (the package exports the function)

HQ, HKV, D = 32, 8, 128
# (B, L, page or None, kv dtype): bench_decode's cases with a target (+ B64/B128 paged controls)
CASES = [(1, 32768, None, "bf16"), (1, 131072, None, "bf16"), (1, 131072, 16, "bf16"),
         (16, 4096, None, "bf16"), (32, 4096, None, "bf16"), (32, 8192, None, "bf16"), (32, 8192, 16, "bf16"),
         (32, 8192, None, "fp8"), (32, 8192, 16, "fp8"), (64, 4096, 16, "bf16"), (128, 2048, 16, "bf16")]
SMOKE_CASES = [(2, 64, None, "bf16"), (2, 64, 16, "bf16"), (1, 200, 32, "fp8")]
# (block_n, warps, stages, cvt) x swap {off, on}; fp8: cvt 0 once (v5's best tile), 1/2 over tiles
TILES = [(64, 4, 4, 0), (128, 8, 3, 0), (128, 4, 3, 0), (64, 8, 4, 0)]
TILES_B1 = [(64, 4, 3, 0), (64, 4, 2, 0), (32, 4, 4, 0)]
TILES_FP8 = [(128, 4, 3, 0), (128, 4, 3, 1), (128, 4, 3, 2), (64, 4, 3, 1), (64, 4, 3, 2), (128, 8, 3, 1),
             (128, 8, 3, 2), (128, 4, 2, 2), (64, 4, 4, 2)]
# v7 flat kernel tiles: (block_n, warps, stages, swap, programs per SM), the wrapper's own candidates
FLAT_TILES, FLAT_TILES_PAGED = flat_mod.FLAT_TILES, flat_mod.FLAT_TILES_PAGED
COLS = ["case", "batch", "kv_len", "page", "kv_dtype", "variant", "block_n", "num_warps", "num_stages",
        "swap", "cvt", "persist", "programs", "flat_regs", "flat_smem", "splits_asked", "splits_eff", "combine", "time_us", "gb_per_s", "frac_copy_bw", "x_floor",
        "floor_us", "bytes", "rel_err", "timing", "copy_bw_tb_s"]


def copy_bandwidth(dev, smoke, rep_ms):
    """Fastest torch device copy (read + write bytes / s) over 1 GiB and 256 MiB, graph and eager."""
    best, rows = 0.0, []
    for mib in ([1] if smoke else [1024, 256]):
        n = mib * 2**20 // 2
        src = torch.randn(n, dtype=torch.bfloat16, device=dev)
        dst = torch.empty_like(src)
        for graph in ((True,) if smoke else (True, False)):
            t = lk.time_fn(lambda: dst.copy_(src), rep_ms=rep_ms, graph=graph)
            bw = 4.0 * n / t
            rows.append((mib, lk.harness.LAST_METHOD or ("graph" if graph else "eager"), t, bw))
            best = max(best, bw)
        src = dst = None  # free before the next size
    for mib, how, t, bw in rows:
        print(f"[copy] {mib:5d} MiB {how:5s} {t * 1e6:9.1f} us {bw / 1e12:6.3f} TB/s")
    print(f"[copy] reference bandwidth {best / 1e12:.3f} TB/s")
    return best


def probe_fixed_cost(dev, smoke, bw, rep_ms, act):
    """Where a small decode's fixed cost comes from: a tiny decode (launch + ramp), a torch copy
    moving the same bytes as B1 L32k (134 MB read), and B1 L32k with and without the L2 flush that
    time_fn puts before every call (the flush leaves L2 full of dirty lines that the timed kernel
    must write back)."""
    L = 256 if smoke else 32768
    q, k, v, lens, bt = make_case(1, L, None, "bf16", dev, act)
    o = torch.empty_like(q)
    by = attention_decode_bytes(1, HQ, HKV, 1, L, D, q.element_size(), k.element_size())
    cfg = DecodeConfig(16 if smoke else 64, 4, 1 if smoke else 4, default_splits(HKV, L, D, 2, sm_count(dev)))
    fn = lambda: lk.attention_decode(q, k, v, lens, bt, out=o, max_kv_len=L, config=cfg)  # noqa: E731
    qs, ks_, vs_, ls, _ = make_case(1, 64, None, "bf16", dev, act)
    os_ = torch.empty_like(qs)
    tiny = lambda: lk.attention_decode(qs, ks_, vs_, ls, None, out=os_, max_kv_len=64, config=cfg._replace(splits=1))  # noqa: E731
    src = torch.randn(int(by) // 4, dtype=torch.bfloat16, device=dev)  # copy reading+writing `by` bytes
    dst = torch.empty_like(src)
    out = {}
    for name, f_, flush in (("decode_tiny_B1_L64", tiny, True), (f"decode_B1_L{L}", fn, True),
                            (f"decode_B1_L{L}_noflush", fn, False), ("torch_copy_same_bytes", lambda: dst.copy_(src), True)):
        t = lk.time_fn(f_, rep_ms=rep_ms, min_reps=5, graph=True, flush_l2=flush)
        out[name] = t
        print(f"[probe] {name:28s} {t * 1e6:8.1f} us  (bytes/copy-BW = {by / bw * 1e6:.1f} us)")
    return out


@contextlib.contextmanager
def patched(mod, name, value):
    saved = getattr(mod, name)
    setattr(mod, name, value)
    try:
        yield
    finally:
        setattr(mod, name, saved)


class _Skip:
    """Stands in for a Triton kernel: ``k[grid](...)`` launches nothing."""

    def __getitem__(self, grid):
        return lambda *a, **k: None


def no_combine():
    """Patch the decode module's combine kernel out (a launch that does nothing): the split kernel
    alone, for the ``nocomb`` probe."""
    return patched(importlib.import_module("llmperf_kernels.attention_decode"), "_combine_kernel", _Skip())


def flat_programs(B, L, bn, persist, sms):
    return max(1, min(persist * sms, B * HKV * triton.cdiv(L, bn)))


def v3_splits(bh, L, sms):
    return max(1, min(triton.cdiv(2 * sms, bh), triton.cdiv(L, 256), 128))


def eff_splits(L, splits, bn):
    chunk = triton.cdiv(triton.cdiv(L, splits), bn) * bn
    return triton.cdiv(L, chunk)


def make_case(B, L, page, kvd, dev, act):
    kdt = torch.float8_e4m3fn if kvd == "fp8" else act
    return random_decode_inputs(B, L, HQ, HKV, D, page, kdt, act, dev)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for tune_decode.csv")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes and variants (runs on CPU, TRITON_INTERPRET=1)")
    ap.add_argument("--rep-ms", type=float, default=8.0, help="replay time per measurement (ms)")
    ap.add_argument("--probe", action="store_true", help="also time the fixed-cost probes (probe_fixed_cost)")
    ap.add_argument("--cases", default="", help="comma-separated case names to keep (e.g. B1_L32768_contig_bf16)")
    ap.add_argument("--repeat", type=int, default=0, help="re-time default / best grid / best flat N times in turn")
    ap.add_argument("--no-grid-sweep", action="store_true",
                    help="skip the grid kernel's tile/split stages (v3 and, at B=1, the default's nocomb stay)")
    ap.add_argument("--no-flat", action="store_true", help="skip the v7 flat kernel, default_v7 and v3")
    ap.add_argument("--combine-ab", action="store_true",
                    help="v8: merge modes (nocomb/kernel/pdl/fused_v6/fused) at the default's tile, default_fused")
    a = ap.parse_args(argv)
    dev = lk.harness.bench_device("tune_decode", a.smoke)
    # the interpreter's tl.dot on bf16 tiles is wrong: fp16 on CPU
    act = torch.bfloat16 if dev == "cuda" else torch.float16
    meta = lk.device_metadata()
    print("device:", {k: meta[k] for k in ("device_name", "sm_count", "driver_version", "torch_version",
                                           "triton_version", "date_utc")})
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "tune_decode.csv")
    f = open(path, "w", newline="")
    w = csv.DictWriter(f, fieldnames=COLS + sorted(meta))
    w.writeheader()
    torch.manual_seed(0)
    t_start = time.time()
    bw = copy_bandwidth(dev, a.smoke, 4.0 if a.smoke else 20.0)
    sms = sm_count(dev)
    if a.probe:
        probe_fixed_cost(dev, a.smoke, bw, a.rep_ms, act)
    keep = set(filter(None, a.cases.split(",")))
    bad = []
    summary = []
    for B, L, page, kvd in (SMOKE_CASES if a.smoke else CASES):
        name = f"B{B}_L{L}_{'paged' + str(page) if page else 'contig'}_{kvd}"
        if keep and name not in keep:
            continue
        q, k, v, lens, bt = make_case(B, L, page, kvd, dev, act)
        ks, vs = (0.25, 0.5) if kvd == "fp8" else (1.0, 1.0)
        ref = lk.attention_decode_ref(q, k, v, lens, bt, k_scale=ks, v_scale=vs)
        o = torch.empty_like(q)
        by = attention_decode_bytes(B, HQ, HKV, 1, L, D, q.element_size(), k.element_size(), page_size=page)
        floor = by / bw
        heur = default_splits(B * HKV, L, D, k.element_size(), sms, page is not None)
        results = {}

        def measure(variant, cfg, retime=False):
            if cfg is None:  # the wrapper's own (autotuned) choice
                eff, comb, progs = 0, "auto", 0
            elif cfg.persist:
                eff, progs = 0, flat_programs(B, L, cfg.block_n, cfg.persist, sms)
                comb = cfg.combine or "kernel"
            else:
                eff = eff_splits(L, cfg.splits, cfg.block_n)
                comb, progs = "none" if eff == 1 else (cfg.combine or "kernel"), B * HKV * eff
            if variant in ("nocomb", "flat_nocomb", "ab:nocomb"):
                comb = "skipped"
            rkey = (variant if variant in ("default", "default_v7", "default_fused", "flat_lazy")
                    or variant.startswith("ab:") else "",) + (
                tuple(cfg) + (eff, comb) if cfg is not None else ())
            if rkey in results and not retime:
                return results[rkey]

            def fn():
                lk.attention_decode(q, k, v, lens, bt, k_scale=ks, v_scale=vs, out=o, max_kv_len=L, config=cfg)

            try:
                picked = {}
                if cfg is None:  # record what the tuner picks (first call: it tunes, launching every candidate)
                    pick = ad_mod._tuner.pick

                    def spy(key, cands, launch):
                        picked["cfg"] = pick(key, cands, launch)
                        return picked["cfg"]

                    with patched(ad_mod._tuner, "pick", spy):
                        fn()
                o.fill_(float("nan"))
                flat_mod.LAST_FLAT.clear()
                fn()  # the launch that is timed (LAST_FLAT: the flat kernel's programs, registers, shared memory)
                fl = dict(flat_mod.LAST_FLAT)
                err = rel_err(o, ref)
                t = lk.time_fn(fn, rep_ms=a.rep_ms, min_reps=5, graph=True)
            except Exception as e:  # noqa: BLE001 - e.g. out of shared memory: report, go on
                print(f"  {name} {variant} {tuple(cfg) if cfg else 'default'}: FAILED {repr(e)[:160]}")
                return None
            if not err <= 1e-2 and variant not in ("nocomb", "flat_nocomb", "ab:nocomb"):
                bad.append((name, variant, tuple(cfg) if cfg else "default", err))
            shown = cfg
            if cfg is None:  # the tuner's pick (interpreter: the wrapper's fixed CPU tile, no tuner call)
                shown = DecodeConfig(*picked["cfg"]) if "cfg" in picked else DecodeConfig(16, 4, 1)
                comb = f"auto:{heur}sp" + (f":{ad_mod._DEFAULT_COMBINE}" if ad_mod._DEFAULT_COMBINE != "kernel" else "")
            row = dict(case=name, batch=B, kv_len=L, page=page or "", kv_dtype=kvd, variant=variant,
                       block_n=shown.block_n, num_warps=shown.num_warps, num_stages=shown.num_stages,
                       swap=int(shown.swap), cvt=shown.cvt, persist=shown.persist, programs=fl.get("programs", progs),
                       flat_regs=fl.get("regs", ""), flat_smem=fl.get("shared", ""),
                       splits_asked=shown.splits, splits_eff=eff, combine=comb, time_us=t * 1e6,
                       gb_per_s=by / t / 1e9, frac_copy_bw=by / t / bw, x_floor=t / floor, floor_us=floor * 1e6,
                       bytes=by, rel_err=err, timing=lk.harness.LAST_METHOD or "cpu", copy_bw_tb_s=bw / 1e12)
            row.update(meta)
            w.writerow(row)
            f.flush()
            print(f"  {name:26s} {variant:11s} bn{shown.block_n:<4d} w{shown.num_warps} s{shown.num_stages} c{shown.cvt} "
                  f"p{shown.persist} {'swap ' if shown.swap else 'rows '}splits {eff:3d} prog {progs:4d} {comb:8s} "
                  f"{t * 1e6:9.1f} us {by / t / 1e9:7.0f} GB/s {by / t / bw * 100:5.1f}% x{t / floor:5.2f}  err {err:.1e}"
                  + (f"  [flat P={fl.get('programs')} NS={fl.get('slots')} eager={fl.get('eager')} regs={fl.get('regs')} "
                     f"smem={fl.get('shared')}]" if fl else ""))
            if not retime:
                results[rkey] = (t, row)
            return t, row

        print(f"[{name}] floor {floor * 1e6:.1f} us, heuristic splits {heur}")
        if a.smoke:
            tiles = [(16, 4, 1, 0)] + ([(16, 4, 1, 2)] if kvd == "fp8" else [])
        else:
            tiles = TILES_FP8 if kvd == "fp8" else TILES + (TILES_B1 if B == 1 else [])
        cands = sorted({1, 2, 4, 8} if heur == 1 else {max(1, heur // 2), heur, min(256, 2 * heur)})
        measure("default", None)  # the wrapper's own choice (autotuned): the baseline
        if a.combine_ab:  # v8: the same with the fused merge as the wrapper's default
            with patched(ad_mod, "_DEFAULT_COMBINE", "fused"):
                measure("default_fused", None)
        if not a.no_flat:
            with patched(ad_mod, "_FLAT_SPLIT_REGIME", True):  # v7 default: tuner also tries the flat kernel
                measure("default_v7", None)
            measure("v3", DecodeConfig(64 if not a.smoke else 16, 4, 3 if not a.smoke else 1,
                                       v3_splits(B * HKV, L, sms), "kernel"))
        ab_plan = []  # v8: (variant, config, context) at the default's tile, heuristic splits
        dflt = results.get(("default",))
        if a.combine_ab and dflt and heur > 1:
            d = dflt[1]
            base = DecodeConfig(d["block_n"], d["num_warps"], d["num_stages"], heur, "kernel", bool(d["swap"]), d["cvt"])
            ab_plan = [("ab:nocomb", base, no_combine), ("ab:kernel", base, contextlib.nullcontext),
                       ("ab:pdl", base._replace(combine="pdl"), contextlib.nullcontext),
                       ("ab:fused_v6", base._replace(combine="fused"), lambda: patched(ad_mod, "_FUSED_MERGE", 1)),
                       ("ab:fused", base._replace(combine="fused"), contextlib.nullcontext)]
            for var, c, ctx in ab_plan:
                with ctx():
                    measure(var, c)
        if a.no_grid_sweep:
            tiles, cands = [], []
            dflt = results.get(("default",))
            if dflt and heur > 1 and B == 1 and not a.combine_ab:  # the default's launch without its combine
                d = dflt[1]
                with no_combine():
                    measure("nocomb", DecodeConfig(d["block_n"], d["num_warps"], d["num_stages"], heur, "kernel",
                                                   bool(d["swap"]), d["cvt"]))
        best = None
        for (bn, nw, ns, cvt), swap in itertools.product(tiles, (False, True)):  # stage A: tiles, heuristic splits
            if kvd == "fp8" and swap and (bn, nw, ns) != (128, 4, 3):
                continue  # fp8 swap-AB: one tile (v5: slower than rows except paged16)
            r = measure("tile", DecodeConfig(bn, nw, ns, heur, "kernel", swap, cvt))
            if r and (best is None or r[0] < best[0]):
                best = (r[0], (bn, nw, ns, swap, cvt))
        heur_t = best[0] if best else float("nan")
        if best:
            bn, nw, ns, swap, cvt = best[1]
            for sp in cands:  # stage B: split counts x combine modes at the best tile
                for comb in ("kernel", "pdl", "fused"):
                    measure("split", DecodeConfig(bn, nw, ns, sp, comb, swap, cvt))
        split_rows = [r for r in results.values() if r[1]["splits_eff"] > 1 and r[1]["combine"] in ("kernel", "pdl")]
        if B == 1 and split_rows and not a.combine_ab:  # probe: the split kernel alone (combine patched out)
            rb = min(split_rows, key=lambda r: r[0])[1]
            with no_combine():
                measure("nocomb", DecodeConfig(rb["block_n"], rb["num_warps"], rb["num_stages"], rb["splits_asked"],
                                               "kernel", bool(rb["swap"]), rb["cvt"]))
        # v7: the persistent flat kernel (bf16/fp16 KV: FLAT_TILES; fp8: two tiles)
        if a.smoke:
            ftiles = [(16, 4, 1, False, 2), (16, 4, 1, True, 3)]
        elif kvd == "fp8":
            ftiles = [(128, 4, 3, False, 2), (128, 4, 3, True, 2)]
        else:
            ftiles = FLAT_TILES_PAGED if page else FLAT_TILES
        fbest = None
        for bn, nw, ns, swap, pers in ([] if a.no_flat else ftiles):
            cvt = 1 if kvd == "fp8" and swap and not a.smoke else 0
            r = measure("flat", DecodeConfig(bn, nw, ns, None, "kernel", swap, cvt, pers))
            if r and (fbest is None or r[0] < fbest[0]):
                fbest = (r[0], DecodeConfig(bn, nw, ns, None, "kernel", swap, cvt, pers))
        if fbest and not a.no_flat:
            fcfg = fbest[1]
            r = measure("flat", fcfg._replace(combine="pdl"))
            if r and r[0] < fbest[0]:
                fbest = (r[0], fcfg._replace(combine="pdl"))
            fcfg = fbest[1]
            if page is None and B <= flat_mod._EAGER_MAX_BATCH:  # probe: loads masked by kv_lens
                with patched(flat_mod, "_EAGER_MAX_BATCH", 0):
                    measure("flat_lazy", fcfg)
            with patched(flat_mod, "_flat_combine_kernel", _Skip()):
                measure("flat_nocomb", fcfg)
        ok = [r for r in results.values() if r[1]["variant"] not in ("nocomb", "flat_nocomb", "flat_lazy", "ab:nocomb")]
        allr = sorted(ok, key=lambda r: r[0])
        v3r = next((r for r in results.values() if r[1]["variant"] == "v3"), None)
        dr = next((r for r in results.values() if r[1]["variant"] == "default"), None)
        d7 = next((r for r in results.values() if r[1]["variant"] == "default_v7"), None)
        grid_rows = [r for r in ok if r[1]["variant"] in ("v3", "tile", "split")]
        gbest = min(grid_rows, key=lambda r: r[0]) if grid_rows else None
        reps = {}
        if a.repeat and dr and a.combine_ab:  # v8: default, default_fused and the merge modes, in turn
            plan = [("default", None, contextlib.nullcontext),
                    ("default_fused", None, lambda: patched(ad_mod, "_DEFAULT_COMBINE", "fused"))] + ab_plan
            for _ in range(a.repeat):
                for var, c, ctx in plan:
                    with ctx():
                        r = measure(var, c, retime=True)
                    if r:
                        reps.setdefault(var, []).append(r[0])
        elif a.repeat and dr:  # run-to-run spread: default / best grid / best flat, in turn
            def cfg_of(row):
                return DecodeConfig(row["block_n"], row["num_warps"], row["num_stages"], row["splits_asked"] or None,
                                    None if row["combine"] in ("none",) else row["combine"], bool(row["swap"]),
                                    row["cvt"], row["persist"])
            plan = [("default", None, False), ("default_v7", None, True)] + \
                   ([("grid", cfg_of(gbest[1]), False)] if gbest else []) + ([("flat", fbest[1], False)] if fbest else [])
            for _ in range(a.repeat):
                for tag, c, v7 in plan:
                    with patched(ad_mod, "_FLAT_SPLIT_REGIME", v7):
                        r = measure("repeat:" + tag, c, retime=True)
                    if r:
                        reps.setdefault(tag, []).append(r[0])
        if allr:
            tb, rb = allr[0]
            summary.append((name, floor, v3r[0] if v3r else float("nan"), heur_t, tb, rb, dr, d7, fbest, reps))
        q = k = v = ref = o = None  # free the case's ~1 GiB before the next
        if dev == "cuda":
            torch.cuda.empty_cache()
    f.close()
    print("\nsummary (fraction of copy BW, time / floor): v3 | heuristic splits, best tile | best variant")
    for name, floor, t3, th, tb, rb, dr, d7, fb, reps in summary:
        print(f"  {name:26s} v3 {floor / t3 * 100:5.1f}% x{t3 / floor:4.2f} | heur {floor / th * 100:5.1f}% "
              f"x{th / floor:4.2f} | best {floor / tb * 100:5.1f}% x{tb / floor:4.2f} "
              f"({rb['variant']} bn{rb['block_n']} w{rb['num_warps']} s{rb['num_stages']} cvt {rb['cvt']} swap {rb['swap']} "
              f"persist {rb['persist']} splits {rb['splits_eff']} {rb['combine']})")
        if dr:
            line = f"  {'':26s} default {dr[0] * 1e6:7.1f} us x{dr[0] / floor:4.2f}"
            if d7:
                line += (f" | default_v7 {d7[0] * 1e6:7.1f} us x{d7[0] / floor:4.2f} (persist {d7[1]['persist']} "
                         f"bn{d7[1]['block_n']} w{d7[1]['num_warps']} s{d7[1]['num_stages']})")
            if fb:
                line += f" | best flat {fb[0] * 1e6:7.1f} us x{fb[0] / floor:4.2f} {tuple(fb[1])}"
            print(line)
        for tag, ts in reps.items():
            ts = sorted(ts)
            print(f"  {'':26s} repeat {tag:8s} median {ts[len(ts) // 2] * 1e6:7.1f} us x{ts[len(ts) // 2] / floor:4.2f} "
                  f"(min {ts[0] * 1e6:.1f}, max {ts[-1] * 1e6:.1f}, n={len(ts)})")
    print(f"wrote {path} ({time.time() - t_start:.0f} s)")
    if bad:
        for b in bad:
            print("WRONG RESULT:", b)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
