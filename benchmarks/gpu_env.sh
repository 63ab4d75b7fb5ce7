# Sourced by every benchmarks/gpu_*.sh: the environment of a GPU call (the device machine has no
# network, so the repo is imported from the checkout and missing wheels come from .whl/).
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SHIM=$(mktemp -d)
ln -sfn "$ROOT/kernels" "$SHIM/llmperf_kernels"   # import llmperf_kernels without building
ln -sfn "$ROOT/llmperf" "$SHIM/llmperf"   # and llmperf, also where tests/kernels/conftest.py drops the repo root from sys.path
export PYTHONPATH="$SHIM:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then   # pydantic, pandas ... that the GPU image may lack
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
