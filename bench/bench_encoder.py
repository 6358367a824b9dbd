"""CLIP encoder throughput: clipcore's Flax NNX towers vs transformers' torch CLIPModel.

A ViT-B/32-sized random checkpoint (transformers.CLIPConfig() defaults: image
224 px, patch 32, 12 + 12 layers, projection 512) is written with
``CLIPModel.save_pretrained`` to a temporary directory and loaded by both.
Timed: ``image_features`` on ``[B, 3, 224, 224]`` and ``text_features`` on
``[B, 77]`` tokens (best and median of ``--repeats`` after a warm-up call that
compiles), against ``get_image_features`` / ``get_text_features`` under
``torch.inference_mode()`` on the same inputs; the max abs difference of the
features is printed too.

    python3 bench/bench_encoder.py [--batch 16] [--repeats 5] [--bf16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import numpy as np


def _time(fn, repeats):
    fn()  # warm-up (compilation)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--bf16", action="store_true", help="also time clipcore with dtype='bfloat16'")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")

    import jax
    import torch
    from transformers import CLIPConfig, CLIPModel

    from clipcore.encoder import load_clip

    torch.manual_seed(0)
    cfg = CLIPConfig()
    model = CLIPModel(cfg).eval()
    d = tempfile.mkdtemp(prefix="clipcore-bench-")
    model.save_pretrained(d)
    enc = load_clip(d, tokenizer=False, image_processor=False)
    rng = np.random.default_rng(0)
    px = rng.normal(size=(args.batch, 3, 224, 224)).astype(np.float32)
    ids = rng.integers(0, 49406, size=(args.batch, 77)).astype(np.int32)
    ids[:, 0], ids[:, 20] = 49406, 49407
    mask = np.ones_like(ids)

    def flax_img(e=enc):
        return jax.block_until_ready(e.image_features(px))

    def flax_txt(e=enc):
        return jax.block_until_ready(e.text_features(ids, mask))

    tpx, tids, tmask = torch.from_numpy(px), torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(mask.astype(np.int64))

    def torch_img():
        with torch.inference_mode():
            out = model.get_image_features(pixel_values=tpx)
        return getattr(out, "pooler_output", out)

    def torch_txt():
        with torch.inference_mode():
            out = model.get_text_features(input_ids=tids, attention_mask=tmask)
        return getattr(out, "pooler_output", out)

    diff_img = float(np.abs(np.asarray(flax_img()) - torch_img().numpy()).max())
    diff_txt = float(np.abs(np.asarray(flax_txt()) - torch_txt().numpy()).max())
    rows = []
    for what, f, t in (("image", flax_img, torch_img), ("text", flax_txt, torch_txt)):
        fb, fm = _time(f, args.repeats)
        tb, tm = _time(t, args.repeats)
        rows.append((what, "float32", fb, fm, tb, tm))
    if args.bf16:
        enc16 = load_clip(d, dtype="bfloat16", tokenizer=False, image_processor=False)
        for what, f, t in (("image", lambda: flax_img(enc16), torch_img), ("text", lambda: flax_txt(enc16), torch_txt)):
            fb, fm = _time(f, args.repeats)
            rows.append((what, "bfloat16", fb, fm, None, None))
    print(f"ViT-B/32-sized random CLIP, batch {args.batch}, device {jax.devices()[0]}, torch threads "
          f"{torch.get_num_threads()}; max |Δ| image {diff_img:.2e}, text {diff_txt:.2e}")
    print(f"{'tower':6} {'clipcore dtype':14} {'clipcore best/median s':>24} {'torch best/median s':>22} "
          f"{'items/s clipcore':>17} {'items/s torch':>14} {'speed-up':>9}")
    for what, dt, fb, fm, tb, tm in rows:
        tcol = f"{tb:.3f} / {tm:.3f}" if tb else "-"
        print(f"{what:6} {dt:14} {fb:.3f} / {fm:.3f}".ljust(47) + f"{tcol:>22} {args.batch / fb:17.1f} "
              f"{(args.batch / tb if tb else float('nan')):14.1f} {(tb / fb if tb else float('nan')):9.2f}")


if __name__ == "__main__":
    main()
