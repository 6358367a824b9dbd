#!/usr/bin/env bash
# The models' benches at the sizes of their tables in bench/RESULTS.md, one log each: run on a quiet machine
# (each takes tens of minutes to hours on a 2-core CPU), then copy the tables into bench/RESULTS.md.
#
#   bash bench/run_models_benches.sh            # all three, logs under out/models_bench/ (ignored by git)
#   OUT=/some/dir STEPS="mds iin" bash bench/run_models_benches.sh
#
# mds: neural MDS on CLIP-like pairs (topic_pairs: 2000 pairs in 512-d, semantics in a 48-d subspace with
#      40 topics, modality gap, strong noise), fitted on 1500, image→text top-1 on the 500 held out and
#      in-sample, D' = 32 and 64: PCA, isometric (default), isotonic, isometric linear, isometric as before.
# iin: the held-out edit table (mixed_attributes: 6000 × 64-d, three binary attributes, fit on 4500, edit
#      the 1500 held out): 4 blocks, hidden 128, lr 1e-3 at 1500 and 4000 steps, residual_size=2,
#      factor_sizes="estimate"; now (validation checkpoint, jittered pairs) and before.
# vae: the VAE's held-out reconstruction on Fashion-MNIST (20 000 images, 3000 steps, latent 16) and on
#      scikit-learn's digits, then the IIN on the Fashion-MNIST latent (footwear, light; 2000 steps) with
#      its edits decoded and read by probes on real pixels (goal: ≥ 0.90 flip to the target).
#
# SEEDS (default 0,1,2) sets the seeds of the mds and iin tables. Each bench's exit status is kept in
# $OUT/status.txt; the script goes on after a failure and exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

out="${OUT:-$PWD/out/models_bench}"
steps="${STEPS:-mds iin vae}"
seeds="${SEEDS:-0,1,2}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"

{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  git rev-parse HEAD 2>/dev/null || true
  uname -srm
  nproc
  uptime
  "$py" -c "import jax, flax, optax, numpy, sklearn, platform; print('python', platform.python_version(), \
'jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__, \
'sklearn', sklearn.__version__)"
} > "$out/environment.txt" 2>&1

failed=0
run() {  # run NAME CMD...: CMD's output to $OUT/NAME.log (and the terminal), its time and status recorded
  local name="$1"
  shift
  echo "== $name: $*" | tee "$out/$name.log"
  local t0=$SECONDS
  "$@" 2>&1 | tee -a "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "$name rc=$rc seconds=$((SECONDS - t0)) load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/status.txt"
  [[ $rc -eq 0 ]] || failed=1
}

[[ " $steps " == *" mds "* ]] && run bench_mds "$py" bench/bench_mds.py --data topics --n 2000 --dims 32,64 \
  --seeds "$seeds" --variants all
[[ " $steps " == *" iin "* ]] && run bench_iin_edits "$py" bench/bench_iin.py --edits-table --seeds "$seeds" --variants all
[[ " $steps " == *" vae "* ]] && run bench_vae "$py" bench/bench_vae.py --fashion-n 20000 --steps 3000 \
  --latent-dim 16 --iin-steps 2000 --seed 0

echo "logs in $out"
exit "$failed"
