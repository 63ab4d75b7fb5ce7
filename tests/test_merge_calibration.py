"""benchmarks/merge_calibration.py: a partial sweep's rows replace the same kinds in a calibration,
other rows stay byte-for-byte, and a foreign or broken file is refused (exit 2, nothing written)."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "hardware" / "calibration" / "h100-sxm5-80gb.csv"
_spec = importlib.util.spec_from_file_location("merge_calibration", ROOT / "benchmarks" / "merge_calibration.py")
mc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mc)


def _w4(frame):
    return (frame["name"] == "gemm_w4a16") & (frame["kernel_source"] == "triton")


def test_merge_replaces_one_kind(tmp_path):
    """NEW's W4A16 rows (one shape, here at other token counts) replace BASE's W4A16 rows of that
    shape; every other row of BASE stays as it was."""
    base = pd.read_csv(BUNDLED)
    shape = (base["n"] == 4096) & (base["k"] == 4096)
    assert (_w4(base) & shape).sum() > 5
    new = base[_w4(base) & shape].iloc[:5].copy()
    new["time_s"] = new["time_s"] * 0.5
    new["m"] = [1, 64, 512, 4096, 16384]
    newf = tmp_path / "w4.csv"
    new.to_csv(newf, index=False)
    out = tmp_path / "merged.csv"
    assert mc.main([str(BUNDLED), str(newf), "--out", str(out)]) == 0
    merged = pd.read_csv(out)
    mine = _w4(merged) & (merged["n"] == 4096) & (merged["k"] == 4096)
    assert sorted(merged[mine]["m"]) == [1, 64, 512, 4096, 16384]
    pd.testing.assert_frame_equal(merged[~mine].reset_index(drop=True),
                                  base[~(_w4(base) & shape)].reset_index(drop=True))
    assert (out.parent / "merged.residuals.json").exists()


def test_partial_sweep_replaces_only_its_shapes(tmp_path):
    base = pd.read_csv(BUNDLED)
    shape = (base["n"] == 4096) & (base["k"] == 4096)
    new = base[_w4(base) & shape].copy()
    new["time_s"] *= 0.5
    newf, out = tmp_path / "w4_partial.csv", tmp_path / "merged.csv"
    new.to_csv(newf, index=False)
    assert mc.main([str(BUNDLED), str(newf), "--out", str(out)]) == 0
    merged = pd.read_csv(out)
    kept = merged[_w4(merged) & ~((merged["n"] == 4096) & (merged["k"] == 4096))]
    assert len(kept) == (_w4(base) & ~shape).sum() > 0  # the other shapes' W4A16 rows stay
    got = merged[_w4(merged) & (merged["n"] == 4096) & (merged["k"] == 4096)]["time_s"].sort_values().to_numpy()
    assert np.allclose(got, new["time_s"].sort_values().to_numpy())


def test_merge_refuses_foreign_or_broken(tmp_path, capsys):
    other = pd.read_csv(ROOT / "hardware" / "calibration" / "h200-sxm-141gb.csv")
    newf = tmp_path / "h200_w4.csv"
    other[_w4(other)].to_csv(newf, index=False)
    out = tmp_path / "merged.csv"
    assert mc.main([str(BUNDLED), str(newf), "--out", str(out)]) == 2
    assert "different hardware" in capsys.readouterr().err and not out.exists()
    broken = tmp_path / "broken.csv"
    bad = pd.read_csv(BUNDLED).iloc[:3].copy()
    bad["time_s"] = -1.0
    bad.to_csv(broken, index=False)
    assert mc.main([str(BUNDLED), str(broken), "--out", str(out)]) == 2
    assert "time_s must be positive" in capsys.readouterr().err and not out.exists()
    assert not list(tmp_path.glob("*.writing"))


def test_merge_needs_the_key_columns():
    base = pd.read_csv(BUNDLED).iloc[:3]
    with pytest.raises(ValueError, match="column 'name' missing"):
        mc.merge(base, base.drop(columns=["name"]))


_ps = importlib.util.spec_from_file_location("prune_calibration", ROOT / "benchmarks" / "prune_calibration.py")
pc = importlib.util.module_from_spec(_ps)
_ps.loader.exec_module(pc)


def test_prune_drops_only_old_rows_of_one_kernel_above_m(tmp_path, capsys):
    """benchmarks/prune_calibration.py: rows of the named kernel above M and dated before the cut go,
    everything else stays; a second run finds nothing and exits 2 with one line, the file untouched."""
    base = pd.read_csv(BUNDLED)
    base = pd.concat([base, base[_w4(base)].assign(m=64.0, date="2026-11-22T00:00:00Z")], ignore_index=True)
    f = tmp_path / "h100.csv"
    base.to_csv(f, index=False)
    old_big = _w4(base) & (base["m"] > 16) & (base["date"].astype(str) < "2026-12-01")
    assert old_big.sum() > 0
    assert pc.main([str(f), "--name", "gemm_w4a16", "--above-m", "16", "--before", "2026-12-01"]) == 0
    pruned = pd.read_csv(f)
    assert len(pruned) == len(base) - old_big.sum()
    assert not (_w4(pruned) & (pruned["m"] > 16) & (pruned["date"].astype(str) < "2026-12-01")).any()
    assert (_w4(pruned) & (pruned["m"] > 16)).any()  # the session 11 rows (dated 2026-12-06) stay
    pd.testing.assert_frame_equal(pruned[~_w4(pruned)].reset_index(drop=True), base[~_w4(base)].reset_index(drop=True))
    before = f.read_bytes()
    assert pc.main([str(f), "--name", "gemm_w4a16", "--above-m", "16", "--before", "2026-12-01"]) == 2
    assert "no gemm_w4a16 rows" in capsys.readouterr().err and f.read_bytes() == before
