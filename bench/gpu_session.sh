#!/usr/bin/env bash
# The GPU checks of issue 3 in one device call: build clipcore with the CUDA
# handlers, run tests/_ffi/test_cuda.py against NumPy and the CPU handlers, and
# take the GPU figures for bench/RESULTS.md.
#
# The lent GPU machines (an H100 or H200, see the device tool) have Python
# 3.12, a CUDA jaxlib, nvcc, cuBLAS, pybind11, scikit-build-core, CMake and
# pytest, but no network and no scipy-openblas32 (the BLAS the compiled core
# links). So, in two steps:
#
#   1. here (a machine with PyPI):   bash bench/gpu_session.sh fetch
#      puts the missing wheels, for CPython 3.12 / manylinux x86-64, in .whl/
#      (ignored by git);
#   2. on the device, with carry [".whl"]:
#        bash bench/gpu_session.sh run
#      installs them into /tmp/site, builds the CUDA variant into
#      /tmp/site (-Ccmake.define.CLIPCORE_ENABLE_CUDA=ON), then runs the CUDA
#      tests and the benches, each log under $OUT (or ./gpu_out).
#
# Budget: the build takes ~2 min on 16 cores, the tests ~1 min, the benches
# ~5 min at the default sizes; keep the call under the tool's 10 minutes
# (STEPS="tests" or STEPS="bench" runs one part).
set -euo pipefail
cd "$(dirname "$0")/.."

fetch() {
  mkdir -p .whl
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "scipy-openblas32>=0.3.28"
  ls -la .whl
}

run() {
  local out="${OUT:-$PWD/gpu_out}"
  mkdir -p "$out"
  export PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())" | tee -a "$out/gpu.txt"
  # the package itself and its compiled core with the CUDA handlers (the machine's own jax, flax, ... are used)
  python3 -m pip install --no-build-isolation --no-deps --no-cache-dir --target /tmp/site \
    -Ccmake.define.CLIPCORE_ENABLE_CUDA=ON -Ccmake.build-type=Release -Cbuild-dir=/tmp/clipcore-cuda-build \
    . 2>&1 | tail -n 40 > "$out/build.log"  # its own build dir: build/ keeps the CPU build's CMake cache
  python3 -c "import clipcore._ffi as f; print('cuda handlers registered:', f.cuda_available())" | tee -a "$out/gpu.txt"
  local steps="${STEPS:-tests bench}"
  if [[ " $steps " == *" tests "* ]]; then
    # the package comes from /tmp/site (the repo's python/clipcore is not on the path)
    python3 -m pytest -q -p no:cacheprovider -rs tests/_ffi/test_cuda.py 2>&1 | tee "$out/test_cuda.log" || true
  fi
  if [[ " $steps " == *" bench "* ]]; then
    python3 bench/bench_sharded.py --no-force 2>&1 | tee "$out/bench_sharded.log" || true
    python3 bench/bench_nystrom.py --methods sklearn,ffi-kernel,ffi-whiten,jax --repeats 2 \
      --data /tmp/clipcore_bench_nystrom.npy 2>&1 | tee "$out/bench_nystrom.log" || true
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  run) run ;;
  *) echo "usage: bash bench/gpu_session.sh fetch|run" >&2; exit 2 ;;
esac
