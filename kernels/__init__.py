"""llmperf's bundled Triton kernels (import name ``llmperf_kernels``).

Each module holds one kernel family: docstring (what, algorithm, source), candidate configs,
``@triton.jit`` kernel(s), a checked public wrapper and a plain-torch ``*_ref``. Nothing in the
analytic core (``llmperf``) imports this package; it imports torch and triton on import.
"""

from .harness import device_metadata, time_fn  # noqa: F401
from .gemm import gemm, gemm_ref  # noqa: F401
from .gemm_fp8 import gemm_fp8, gemm_fp8_ref  # noqa: F401
from .gemm_w4a16 import gemm_w4a16, gemm_w4a16_config, gemm_w4a16_ref, quantize_w4  # noqa: F401
from .gemm_w8a16 import gemm_w8a16, gemm_w8a16_ref, quantize_w8  # noqa: F401
from .attention_prefill import attention_prefill, attention_prefill_ref  # noqa: F401
from .attention_decode import attention_decode, attention_decode_ref  # noqa: F401
from .membound import add_rmsnorm, add_rmsnorm_ref, copy, copy_ref  # noqa: F401
