"""``clipcore compare`` (several models at one kernel, with intervals and a ranking) and ``clipcore
clipscore`` (both CLIPScore conventions, per prompt when prompts repeat)."""

from __future__ import annotations

import argparse

import numpy as np

from ._common import (add_source_options, environment, pairing_lines, quiet_progress, read_pair, source_kwargs, table,
                      write_json)

__all__ = ["add_commands", "cmd_compare", "cmd_clipscore", "parse_set"]


def parse_set(text: str) -> tuple[str, object]:
    """``NAME=PATH`` (a shard directory or layout folder with both columns) or
    ``NAME=IMAGES.npy,TEXTS.npy`` → (name, what :func:`clipcore.compare` takes)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--set: expected NAME=PATH or NAME=IMAGES.npy,TEXTS.npy, got {text!r}")
    parts = path.split(",")
    if len(parts) == 2:
        return name, {"images": parts[0], "texts": parts[1]}
    if len(parts) != 1:
        raise ValueError(f"--set: {name}: expected one folder or IMAGES,TEXTS, got {path!r}")
    return name, path


def cmd_compare(args: argparse.Namespace) -> int:
    from ..comparison import compare

    sets = dict(parse_set(s) for s in args.set)
    if len(sets) != len(args.set):
        raise ValueError("--set: two sets share a name")
    r = compare(sets, kernel=args.kernel, sigma=args.sigma, rff_features=args.rff_features,
                landmarks=args.landmarks, key=args.seed, bootstrap=args.bootstrap, level=args.level,
                clip_variant=args.clip_variant, progress=quiet_progress(args), conditional=not args.no_conditional,
                **source_kwargs(args))
    if not args.quiet:
        print(f"kernel {args.kernel}" + ("" if r.sigma is None else f", σ = {r.sigma:.6g} (one σ for every set)"))
        print(r.table())
        if not args.no_conditional:
            print("conditional_vendi = exp H(X|T), information_vendi = exp I(X;T) (order 1, Jalali et al. 2024) at "
                  "the same kernel" + ("" if r.sigma is None else " (σ for images and texts)") + "; no intervals")
        for name in r:
            for line in pairing_lines(r[name].pairing):
                print(f"{name}: {line.strip()}" if not line.startswith("  ") else line)
    if args.json:
        write_json(args.json, {**r.summary(), "environment": environment()})
    if args.plot:
        r.plot(args.plot)
    return 0


def _per_prompt(per_sample: np.ndarray, texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean per distinct prompt, its row count, its first row) for prompts that repeat."""
    rows = np.ascontiguousarray(texts)
    key = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, ids, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    means = np.bincount(ids.ravel(), weights=per_sample) / counts
    return means, counts, first


def cmd_clipscore(args: argparse.Namespace) -> int:
    from ..tables import CLIP_SCORE_VARIANTS, clip_score

    x, t, pairing = read_pair(args.images, args.texts, args)
    variants = tuple(CLIP_SCORE_VARIANTS) if args.variant == "both" else (args.variant,)
    results = {v: clip_score(x, t, variant=v) for v in variants}
    payload = {"n": int(x.shape[0]), "scores": {v: {"score": r.score, "weight": r.weight} for v, r in results.items()}}
    if pairing is not None:
        payload["pairing"] = pairing
    means, counts, first = _per_prompt(results[variants[0]].per_sample, np.asarray(t))
    rows = [[v, r.score, r.weight, r.n] for v, r in results.items()]
    if counts.max() > 1:
        order = np.argsort(means)
        payload["per_prompt"] = {"variant": variants[0], "prompts": int(len(means)),
                                 "first_row": first[order].tolist(), "images": counts[order].tolist(),
                                 "score": means[order].tolist()}
    if not args.quiet:
        print(table(rows, ["variant", "CLIPScore", "w", "pairs"]))
        for line in pairing_lines(pairing):
            print(line)
        if "per_prompt" in payload:
            show = min(args.show, len(means))
            print(f"\n{len(means)} prompts ({counts.min()}–{counts.max()} images each); the {show} lowest and "
                  f"highest by mean {variants[0]} CLIPScore (prompt = its first row):")
            pick = np.unique(np.r_[order[:show], order[-show:]])
            print(table([[int(first[i]), int(counts[i]), float(means[i])] for i in pick[np.argsort(means[pick])]],
                        ["first row", "images", "mean"]))
    if args.json:
        write_json(args.json, {**payload, "inputs": {"images": str(args.images), "texts": str(args.texts)},
                               "environment": environment()})
    return 0


def add_commands(sub) -> None:
    """Register ``compare`` and ``clipscore``."""
    c = sub.add_parser("compare", help="compare models at one kernel: SCE, text score, Vendi, CLIPScore, "
                                       "Conditional / Information Vendi, ranking",
                       description="Score several models' images for the same prompts at ONE kernel (one σ over "
                                   "the pooled sets, one ω or landmark set), with bootstrap intervals over prompts "
                                   "and a ranking by SCE that marks models it cannot separate; Conditional and "
                                   "Information Vendi of each set at the same kernel.")
    c.add_argument("--set", action="append", required=True, metavar="NAME=PATH",
                   help="a model: NAME=FOLDER (both columns) or NAME=IMAGES.npy,TEXTS.npy; repeat per model")
    c.add_argument("--kernel", choices=("gaussian", "cosine"), default="gaussian")
    c.add_argument("--sigma", type=float, default=None, help="one bandwidth (default: median over the pooled sets)")
    c.add_argument("--rff-features", type=int, default=None, metavar="D", help="share D random Fourier frequencies")
    c.add_argument("--landmarks", type=int, default=None, metavar="M", help="share M Nyström landmarks")
    c.add_argument("--seed", type=int, default=0, help="seed of ω, the landmarks and the bootstrap")
    c.add_argument("--bootstrap", type=int, default=200, help="resamples of the prompts (0: none)")
    c.add_argument("--level", type=float, default=0.9, help="coverage of the intervals (default 0.9)")
    c.add_argument("--clip-variant", choices=("hessel", "torchmetrics"), default="hessel")
    c.add_argument("--no-conditional", action="store_true",
                   help="skip Conditional / Information Vendi (exact n×n kernels up to 7,168 rows per set)")
    add_source_options(c.add_argument_group("files (sets given as folders or files)"))
    c.add_argument("--json", default=None, metavar="OUT.json")
    c.add_argument("--plot", default=None, metavar="OUT.png")
    c.add_argument("--quiet", action="store_true", help="print nothing")
    c.set_defaults(func=cmd_compare)
    s = sub.add_parser("clipscore", help="CLIPScore of paired embeddings (both conventions, per prompt)",
                       description="CLIPScore: Hessel et al.'s mean of 2.5·max(cos, 0) and torchmetrics' "
                                   "max(mean of 100·cos, 0); per prompt when prompts repeat.")
    s.add_argument("--images", required=True, help="image embeddings (.npy, folder, glob)")
    s.add_argument("--texts", default=None, help="text embeddings, row i ↔ image i (omit for a shard folder)")
    add_source_options(s)
    s.add_argument("--variant", choices=("hessel", "torchmetrics", "both"), default="both")
    s.add_argument("--show", type=int, default=5, help="prompts listed at each end (default 5)")
    s.add_argument("--json", default=None, metavar="OUT.json")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_clipscore)


