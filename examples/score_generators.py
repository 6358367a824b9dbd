"""Score two simulated text-to-image models on Fashion-MNIST, offline.

Ten prompts, "a photo of a <class>", one per Fashion-MNIST class.  Two
simulated generators answer each prompt with images of that class:

* ``varied``   — a fresh random image of the class for every request;
* ``collapsed`` — one of only four fixed images of the class (mode collapse).

Both follow the prompts equally well, so the prompt-explained *text score*
should stay close, while the prompt-independent diversity (SCE, Ospanov et
al. 2024) and the Vendi score should rank ``varied`` above ``collapsed``.

Embeddings: with ``--model DIR`` (a local Hugging Face CLIP checkpoint) the
images and prompts go through clipcore's Flax CLIP encoder.  Without one (no
network, no weights) a stand-in embedding is used: images are projected on
the top 64 principal directions of the Fashion-MNIST test pixels,
L2-normalised, shifted by a shared unit offset and renormalised (CLIP's
"cone": image embeddings have mean pairwise cosine ≈ 0.5), and a prompt's
embedding is its class mean in that space plus a fixed offset (a modality
gap).  Note that with the trace-weighted score of SPEC.md the text score
rises a little as within-prompt diversity falls, because tr R = tr C_XX − tr S.  The script writes a CSV + JSON table and a bar
chart PNG, and exits non-zero unless SCE ranks the generators correctly with text scores
within 25% of each other.

    python3 examples/score_generators.py [--model DIR] [--per-prompt 100] [--out score_generators]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np

import clipcore


def simulate(labels: np.ndarray, per_prompt: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each generator: ``(image indices, prompt ids)`` of ``10 · per_prompt`` requests."""
    prompts = np.repeat(np.arange(10), per_prompt)
    varied, collapsed = [], []
    for c in range(10):
        pool = np.flatnonzero(labels == c)
        varied.append(rng.choice(pool, per_prompt, replace=False))
        few = rng.choice(pool, 4, replace=False)
        collapsed.append(few[rng.integers(0, 4, per_prompt)])
    return {"varied": (np.concatenate(varied), prompts), "collapsed": (np.concatenate(collapsed), prompts)}


def pca_embeddings(pixels: np.ndarray, labels: np.ndarray, d: int = 64, seed: int = 0):
    """Stand-in embeddings: ``(image_embed [n, d], prompt_embed [10, d])``."""
    x = pixels.reshape(len(pixels), -1).astype(np.float64) / 255.0
    mu = x.mean(0)
    _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
    img = (x - mu) @ vt[:d].T
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    cone, gap = rng.standard_normal((2, d))
    img += cone / np.linalg.norm(cone)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt = np.stack([img[labels == c].mean(0) for c in range(10)]) + 0.5 * gap / np.linalg.norm(gap)
    return img.astype(np.float32), txt.astype(np.float32)


def clip_embeddings(model_dir: str, pixels: np.ndarray, class_names, needed: np.ndarray):
    """Real CLIP features of the needed images (others left zero) and the 10 prompts."""
    enc = clipcore.load_clip(model_dir)
    img = np.zeros((len(pixels), enc.projection_dim), np.float32)
    rgb = [np.repeat(pixels[i][:, :, None], 3, axis=2) for i in needed]
    img[needed] = enc.encode_images(rgb, batch_size=64)
    txt = enc.encode_texts([f"a photo of a {c.lower()}" for c in class_names])
    return img, txt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="local Hugging Face CLIP checkpoint (default: PCA stand-in)")
    p.add_argument("--per-prompt", type=int, default=100, help="images per prompt and generator (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="score_generators", help="output directory")
    args = p.parse_args(argv)

    data = clipcore.fashion_mnist("test")  # 10 000 images, offline (Debian's dataset-fashion-mnist)
    rng = np.random.default_rng(args.seed)
    gens = simulate(data.labels, args.per_prompt, rng)
    if args.model:
        needed = np.unique(np.concatenate([g[0] for g in gens.values()]))
        img, txt = clip_embeddings(args.model, data.images, data.classes, needed)
        source = f"CLIP checkpoint {args.model}"
    else:
        img, txt = pca_embeddings(data.images, data.labels, seed=args.seed)
        source = "PCA-64 stand-in embeddings (pass --model DIR for CLIP)"

    rows = []
    for name, (idx, prompt_ids) in gens.items():
        x, t = img[idx], txt[prompt_ids]
        res = clipcore.sce(x, t)
        rows.append({"generator": name, "n": len(idx), "distinct_images": int(len(np.unique(idx))),
                     "sce": res.sce, "text_score": res.text_score, "vendi": clipcore.vendi(x).score,
                     "clip_score": clipcore.clip_score(x, t).score})

    os.makedirs(args.out, exist_ok=True)
    header = list(rows[0])
    widths = [max(len(h), 10) for h in header]
    print(f"Fashion-MNIST, 10 prompts × {args.per_prompt} images, {source}\n")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join((f"{r[h]:.4f}" if isinstance(r[h], float) else str(r[h])).rjust(w) for h, w in zip(header, widths)))
    with open(os.path.join(args.out, "scores.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(args.out, "scores.json"), "w") as f:
        json.dump({"embeddings": source, "per_prompt": args.per_prompt, "seed": args.seed, "rows": rows}, f, indent=2)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("sce", "vendi", "text_score")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.38
    for k, r in enumerate(rows):
        ax.bar(np.arange(len(metrics)) + (k - 0.5) * width, [r[m] for m in metrics], width, label=r["generator"])
    ax.set_xticks(range(len(metrics)), ["SCE", "Vendi", "text score"])
    ax.set_ylabel("score")
    ax.set_title("varied vs collapsed generator (Fashion-MNIST)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "scores.png"), dpi=120)
    plt.close(fig)
    print(f"\nwrote {args.out}/scores.csv, scores.json, scores.png")

    varied, collapsed = rows
    ok = varied["sce"] > collapsed["sce"]
    ratio = varied["text_score"] / collapsed["text_score"]
    close = abs(ratio - 1.0) < 0.25
    print(f"SCE ranks varied above collapsed: {ok}; text score ratio varied/collapsed = {ratio:.3f} "
          f"({'close' if close else 'NOT close'})")
    return 0 if ok and close else 1


if __name__ == "__main__":
    sys.exit(main())
