"""DESIGN.md rule 1: importing the core never pulls in torch, triton or matplotlib."""

import subprocess
import sys


def test_import_llmperf_is_light():
    code = ("import sys, llmperf; llmperf.estimate(llmperf.load_model('llama-3.2-1b'), "
            "llmperf.load_hardware('l4')); "
            "print(','.join(sorted({'torch', 'triton', 'matplotlib'} & set(sys.modules))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
