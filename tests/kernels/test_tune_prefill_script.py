"""benchmarks/tune_prefill.py end to end on the CPU (--smoke: one tiny case, two forced configs):
every row has a time, an error against SDPA inside the bench's 1e-2, and a case parsed right."""

import csv
import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tune_prefill.py"


def _load():
    spec = importlib.util.spec_from_file_location("tune_prefill", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="the --smoke path is the CPU interpreter's")
def test_tune_prefill_smoke(tmp_path):
    mod = _load()
    mod.main(["--smoke", "--out", str(tmp_path), "--rep-ms", "1"])
    rows = list(csv.DictReader(open(tmp_path / "tune_prefill.csv")))
    assert [r["config"] for r in rows] == ["(16, 16, 4, 1, 'ws')", "(16, 16, 4, 1)"]
    for r in rows:
        assert not r["error"], r["error"]
        assert float(r["time_us"]) > 0 and float(r["rel_err"]) < 1e-2
        assert (r["batch"], r["hq"], r["hkv"], r["seq"], r["head_dim"], r["causal"]) == ("1", "4", "2", "40", "32", "True")


def test_parse_case_rejects_garbage():
    mod = _load()
    assert mod.parse_case("4x32/8x4096x128c") == (4, 32, 8, 4096, 128, True)
    assert mod.parse_case("1x8/8x100x64f")[-1] is False
    with pytest.raises(SystemExit, match="bad case"):
        mod.parse_case("4x32x4096x128c")
