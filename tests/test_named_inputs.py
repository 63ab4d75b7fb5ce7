"""The public functions take names and paths where they take specs (llmperf/named_inputs.py)."""
import shutil
from pathlib import Path

import pandas as pd
import pytest

import llmperf
from llmperf.named_inputs import accepts_names

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = dict(batch=8, prompt_len=2048, output_len=256)


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200", "mi300x"])
@pytest.mark.parametrize("calibration", ["ideal", "auto"])
def test_estimate_by_name_equals_estimate_by_spec(gpu, calibration):
    model, hardware = llmperf.load_model("llama-3.1-8b"), llmperf.load_hardware(gpu)
    by_spec = llmperf.estimate(model, hardware, calibration=llmperf.resolve_calibration(calibration, hardware),
                               **SCENARIO)
    by_name = llmperf.estimate("llama-3.1-8b", gpu, calibration=calibration, **SCENARIO)
    pd.testing.assert_series_equal(pd.Series(by_name), pd.Series(by_spec))  # NaN intervals under ideal
    expected = {"ideal": "ideal", "auto": {"h100-sxm": "calibrated:h100-sxm5-80gb.csv",
                                          "h200": "calibrated:h200-sxm-141gb.csv",
                                          "mi300x": "ideal"}[gpu]}[calibration]  # no AMD calibration
    assert by_name["calibration"] == expected


def test_paths_are_names_too():
    model_path = ROOT / "model_configs" / "qwen2.5-7b.yaml"
    hardware_path = ROOT / "hardware" / "h200-sxm-141gb.yaml"
    calibration_path = ROOT / "hardware" / "calibration" / "h200-sxm-141gb.csv"
    frame = llmperf.estimate_frame(model_path, hardware_path, calibration=calibration_path, batch=[1, 16])
    expected = llmperf.estimate_frame(llmperf.load_model("qwen2.5-7b"), llmperf.load_hardware("h200"),
                                      calibration=llmperf.resolve_calibration("auto", llmperf.load_hardware("h200")),
                                      batch=[1, 16])
    pd.testing.assert_frame_equal(frame, expected)
    assert llmperf.parameter_counts(str(model_path)) == llmperf.parameter_counts(llmperf.load_model("qwen2.5-7b"))


def test_every_function_taking_specs_accepts_names():
    step = llmperf.Step.decode(batch=4, context_len=4096)
    workload = llmperf.Workload()
    model, hardware = llmperf.load_model("llama-3.2-1b"), llmperf.load_hardware("h100-sxm")
    calibration = llmperf.resolve_calibration("auto", hardware)
    ops = llmperf.ops_frame("llama-3.2-1b", "h100-sxm", workload, step, calibration="auto")
    assert ops["calibration"].iloc[0] == "calibrated:h100-sxm5-80gb.csv"
    pd.testing.assert_frame_equal(ops, llmperf.ops_frame(model, hardware, workload, step, calibration))
    pd.testing.assert_frame_equal(llmperf.layers_frame("llama-3.2-1b", "h100-sxm", workload, step),
                                  llmperf.layers_frame(model, hardware, workload, step))
    assert (llmperf.max_context("llama-3.2-1b", "h100-sxm", workload, batch=16)
            == llmperf.max_context(model, hardware, workload, batch=16))
    pd.testing.assert_frame_equal(llmperf.parameter_table("llama-3.2-1b"), llmperf.parameter_table(model))
    by_name = llmperf.build_step_ops("llama-3.2-1b", workload, step)
    assert [op.name for op in by_name] == [op.name for op in llmperf.build_step_ops(model, workload, step)]


def test_a_changed_calibration_file_is_read_again(tmp_path):
    """Names of calibration files are remembered per (path, size, mtime): an edited file is re-fitted."""
    path = tmp_path / "h100.csv"
    shutil.copy(ROOT / "hardware" / "calibration" / "h100-sxm5-80gb.csv", path)
    before = llmperf.estimate("llama-3.1-8b", "h100-sxm", calibration=path, **SCENARIO)["tpot_s"]
    frame = pd.read_csv(path)
    frame["time_s"] = frame["time_s"] * 2  # every kernel twice as slow
    frame.to_csv(path, index=False)
    after = llmperf.estimate("llama-3.1-8b", "h100-sxm", calibration=path, **SCENARIO)["tpot_s"]
    assert after > 1.5 * before


def test_bad_names_raise_the_usual_one_line_errors():
    with pytest.raises(llmperf.LlmperfError, match="unknown model 'llama-9b'"):
        llmperf.estimate("llama-9b", "h100-sxm")
    with pytest.raises(llmperf.LlmperfError, match="does not exist"):
        llmperf.estimate("llama-3.1-8b", "h100-sxm", calibration="no-such-file.csv")


def test_a_wrong_type_is_named():
    with pytest.raises(TypeError, match="estimate: model must be a ModelSpec, a bundled name or a path, got int"):
        llmperf.estimate(8, "h100-sxm")
    with pytest.raises(TypeError, match="hardware must be a HardwareSpec"):
        llmperf.max_batch("llama-3.1-8b", {"name": "h100"}, llmperf.Workload(), context_len=1024)


def test_decorator_refuses_a_function_without_spec_parameters():
    with pytest.raises(TypeError, match="none of the parameters"):
        accepts_names(lambda batch: batch)
