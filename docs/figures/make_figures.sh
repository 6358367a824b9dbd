#!/usr/bin/env bash
# The figures of the README's models section, from the CLI on generated or offline data (scikit-learn's
# digits; Fashion-MNIST from Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist).
# CPU-sized configurations (a few minutes of CPU each on a 2-core machine): the captions in README.md state
# them. Work files go to ${WORK:-out/figures} (ignored by git); the PNGs are copied into docs/figures/.
# Needs the package installed (python and clipcore on PATH, e.g. the activated .venv).
#
#   bash docs/figures/make_figures.sh            # all
#   STEPS="mds dec" bash docs/figures/make_figures.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
figs="$PWD/docs/figures"
work="${WORK:-$PWD/out/figures}"
steps="${STEPS:-mds vae dec}"
mkdir -p "$work"
cd "$work"

if [[ " $steps " == *" mds "* ]]; then
  # CLIP-like pairs: 2000 in 512-d, semantics in a 48-d subspace (40 topics), modality gap, strong noise
  python -c "import numpy as np; from clipcore.models import topic_pairs; p = topic_pairs(2000, 512, seed=0); \
np.save('mds_images.npy', p.images); np.save('mds_texts.npy', p.texts)"
  clipcore mds --images mds_images.npy --texts mds_texts.npy --dims 16,32,64,128 --method pca,isometric,isotonic \
    --holdout 0.25 --epochs 8 --steps-per-epoch 50 --sklearn-max 0 --seed 0 --json mds_holdout.json \
    --plot mds_holdout.png
  cp mds_holdout.png "$figs/"
fi

if [[ " $steps " == *" vae "* ]]; then
  clipcore vae --data fashion-mnist --n 6000 --steps 800 --latent-dim 16 --seed 0 --save vae_fashion.safetensors \
    --json vae_fashion.json --plot vae_fashion.png
  clipcore iin --vae vae_fashion.safetensors --data fashion-mnist --n 6000 --seed 1 --blocks 4 --hidden 128 \
    --lr 1e-3 --steps 1500 --grid iin_vae_edits.png --grid-factor footwear --grid-rows 6 \
    --correlation iin_vae_correlation.png --json iin_vae.json
  cp vae_fashion.png iin_vae_edits.png iin_vae_correlation.png "$figs/"
fi

if [[ " $steps " == *" dec "* ]]; then
  python -c "import numpy as np, clipcore; d = clipcore.digits(); \
np.save('digits_x.npy', (d.images.reshape(len(d.images), -1) / 16.0).astype(np.float32)); \
np.save('digits_y.npy', d.labels)"
  clipcore cluster --embeddings digits_x.npy --labels digits_y.npy --k 10 --pretrain-steps 1000 --max-steps 1000 \
    --seed 0 --json dec_digits.json --plot-prefix dec_digits
  cp dec_digits_clusters.png dec_digits_labels.png "$figs/"
fi
