"""Every ``$ llmperf`` example and ``>>>`` session shown in README.md and docs/cli.md prints what the
docs say (docs/examples.py; regenerate stale outputs with ``python docs/examples.py --update``)."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("docs_examples", ROOT / "docs" / "examples.py")
docs_examples = importlib.util.module_from_spec(_spec)
sys.modules["docs_examples"] = docs_examples  # dataclasses look their module up there
_spec.loader.exec_module(docs_examples)

EXAMPLES = docs_examples.all_examples()
SESSIONS = [s for d in docs_examples.DOCUMENTS for s in docs_examples.sessions(d)]


def test_the_documents_have_examples():
    # the main job of the README and the error example, and every documented command
    commands = {e.command.split()[1] for e in EXAMPLES if len(e.command.split()) > 1}
    assert {"estimate", "list", "memory", "sweep", "compare", "roofline", "plot", "calibrate",
            "validate"} <= commands
    assert any(e.document == "README.md" and e.exit_code == 0 for e in EXAMPLES)
    assert any(e.exit_code == 2 for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_documented_output_is_current(example, tmp_path):
    output, exit_code = docs_examples.run(example, docs_examples.link_repository(tmp_path))
    diff = docs_examples.difference(example, output, exit_code)
    assert not diff, diff + "\n(run `python docs/examples.py --update`)"


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s.id)
def test_documented_python_sessions_run(session, tmp_path):
    scratch = docs_examples.link_repository(tmp_path)
    for example in session.setup:
        docs_examples.run(example, scratch)
    report = docs_examples.run_session(session, scratch)
    assert not report, report


def test_a_stale_example_is_caught(tmp_path):
    """The checker itself: a changed number in the shown output is reported, and --update's
    rewrite restores the document."""
    example = next(e for e in EXAMPLES if e.document == "README.md" and e.exit_code == 0)
    output, exit_code = docs_examples.run(example, docs_examples.link_repository(tmp_path))
    tampered = [line.replace("TTFT", "TTFX") for line in output]
    assert "TTFX" in "\n".join(tampered)
    assert docs_examples.difference(example, tampered, exit_code)
    assert docs_examples.difference(example, output, 1)  # a wrong exit code is caught too
    assert not docs_examples.difference(example, [line + "   " for line in output], exit_code)


def test_a_wrong_python_session_is_caught(tmp_path):
    session = docs_examples.Session("README.md", 0, ">>> 6 * 7\n41\n", ())
    assert "Expected:" in docs_examples.run_session(session, tmp_path)
    assert not docs_examples.run_session(docs_examples.Session("README.md", 0, ">>> 6 * 7\n42\n", ()), tmp_path)


def test_readme_calibrated_vs_ideal_table():
    """The README's "Calibrated vs ideal" rows are what the library computes now (2 decimals)."""
    import re

    import llmperf

    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (H100 SXM|H200) \| (decode, batch (\d+), context 2k|prefill, batch 1, 2k tokens)"
                      r"[^|]*\| ([\d.]+) ms \((\w+)\) \| ([\d.]+) ms \[([\d.]+), ([\d.]+)\] \((\w+)\) \| "
                      r"([\d.]+) ms \((\w+)\) \|$", readme, re.M)
    assert len(rows) == 6, "the README's calibrated-vs-ideal table changed shape"
    model = llmperf.load_model("llama-3.1-8b")
    for gpu, step, batch, ideal, ideal_bound, cal, low, high, cal_bound, fused, fused_bound in rows:
        hardware = llmperf.load_hardware({"H100 SXM": "h100-sxm", "H200": "h200"}[gpu])
        calibration = llmperf.resolve_calibration("auto", hardware)
        if step.startswith("decode"):
            scenario, key = dict(batch=int(batch), prompt_len=2048, output_len=1, context_len=2048), "tpot"
        else:
            scenario, key = dict(batch=1, prompt_len=2048, output_len=1), "ttft"
        bound = "decode_bound" if key == "tpot" else "prefill_bound"
        got_ideal = llmperf.estimate(model, hardware, calibration=llmperf.IDEAL, **scenario)
        got_cal = llmperf.estimate(model, hardware, calibration=calibration, **scenario)
        got_fused = llmperf.estimate(model, hardware, llmperf.Workload(engine="fused"),
                                     calibration=calibration, **scenario)
        shown = [ideal, ideal_bound, cal, low, high, cal_bound, fused, fused_bound]
        now = [f"{got_ideal[key + '_s'] * 1e3:.2f}", got_ideal[bound],
               f"{got_cal[key + '_s'] * 1e3:.2f}", f"{got_cal[key + '_s_low'] * 1e3:.2f}",
               f"{got_cal[key + '_s_high'] * 1e3:.2f}", got_cal[bound],
               f"{got_fused[key + '_s'] * 1e3:.2f}", got_fused[bound]]
        assert shown == now, f"{gpu} {step}: README {shown}, now {now}"
