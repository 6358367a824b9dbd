"""Diversity guidance with clipcore.functional: raise the SCE of generated embeddings with optax.

A text-to-image model answers a fixed set of prompts; its outputs are mode-collapsed (every image of a
prompt sits near the same point). We push a batch of its CLIP image embeddings — directly, or through the
parameters of a small Flax NNX generator (``--generator``) — to raise the Schur Complement Entropy
(SCE, Ospanov, Farnia & Jalali 2024: the diversity the prompts do not explain) of a precomputed memory bank
of earlier generations ∪ the batch, and optionally the batch's Vendi score (``--vendi-weight``), while
every image keeps its CLIPScore (Hessel et al. 2021: 2.5·max(cos(x, t), 0)) above a floor.

How, with clipcore.functional:

* the bank is ``F.moments(bank_images, bank_texts)``: D×D sums computed once; a step scores
  ``F.sce_from_moments(bank + F.moments(batch, batch_texts))`` and differentiates it in the batch at
  O(b·D² + D³) per step, never touching the bank's rows again;
* the floor is a constraint, not a penalty: each raw output r is mapped to the unit sphere's cap
  {y : cos(y, t) ≥ floor / 2.5} (the nearest point of the cap: the prompt component raised to the floor,
  the rest rescaled), a differentiable map, so the floor holds at every step by construction;
* the step — forward, gradient through the eigendecompositions, optax update — is one ``jax.jit``.

Embeddings are synthetic and CLIP-like (:func:`clipcore.synthetic_pairs`: prompt clusters, image modes, a
modality gap); no network, no weights. It prints a table, writes ``history.json`` and plots
``guidance.png`` (score vs step), and runs in seconds on a CPU::

    python examples/diversity_guidance.py [--steps 200] [--batch 256] [--dim 64] [--bank 2000]
        [--floor 1.25] [--vendi-weight 0.0] [--generator] [--out diversity_guidance]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import clipcore
import clipcore.functional as F

CLIP_WEIGHT = 2.5  # Hessel et al.'s w


def cap_project(raw: jax.Array, t: jax.Array, cos_min: float) -> jax.Array:
    """The nearest unit vectors with cos(y, t) ≥ cos_min: ``raw, t: [b, d]`` → ``[b, d]`` (differentiable).

    A row already in the cap is only normalised; otherwise its component along t̂ is raised to cos_min and
    the orthogonal rest rescaled to √(1 − cos_min²).
    """
    u = raw / jnp.linalg.norm(raw, axis=1, keepdims=True)
    th = t / jnp.linalg.norm(t, axis=1, keepdims=True)
    a = jnp.sum(u * th, axis=1, keepdims=True)
    w = u - a * th
    wn = jnp.linalg.norm(w, axis=1, keepdims=True)
    edge = cos_min * th + np.sqrt(1.0 - cos_min ** 2) * w / jnp.where(wn > 0, wn, 1.0)
    return jnp.where(a >= cos_min, u, edge)


def make_problem(args) -> dict:
    """The prompts, the bank (as moments), the batch's prompts and its collapsed starting point."""
    data = clipcore.synthetic_pairs(n=args.bank + args.batch * 4, d=args.dim, num_prompts=args.prompts,
                                    num_modes=4, gap=0.5, seed=args.seed)
    images, texts = np.asarray(data.images, np.float32), np.asarray(data.texts, np.float32)
    labels = np.asarray(data.prompt_labels)
    bank = F.moments(images[:args.bank], texts[:args.bank])
    # one text embedding per prompt; the batch asks each prompt in turn
    prompts = np.stack([texts[labels == p][0] for p in range(args.prompts)])
    which = np.arange(args.batch) % args.prompts
    batch_texts = prompts[which]
    # the collapsed model: every image of a prompt near that prompt's mean image
    means = np.stack([images[labels == p].mean(0) for p in range(args.prompts)])
    rng = np.random.default_rng(args.seed + 1)
    start = means[which] + 0.02 * rng.standard_normal((args.batch, args.dim)).astype(np.float32)
    return dict(bank=bank, batch_texts=jnp.asarray(batch_texts), start=jnp.asarray(start),
                bank_sce=float(F.sce_from_moments(bank).sce), cos_min=args.floor / CLIP_WEIGHT)


def scores(y, batch_texts, bank):
    """SCE of bank ∪ batch, the batch's own SCE and Vendi, its CLIPScores."""
    union = F.sce_from_moments(bank + F.moments(y, batch_texts))
    own = F.sce(y, batch_texts)
    vendi = F.vendi(y)
    clip = F.clip_score(y, batch_texts)
    return union, own, vendi, clip


def objective(y, batch_texts, bank, vendi_weight):
    union, own, vendi, clip = scores(y, batch_texts, bank)
    loss = -(union.log_sce + vendi_weight * vendi.log_score)
    aux = dict(sce=union.sce, batch_sce=own.sce, text_score=union.text_score, vendi=vendi.score,
               clip_mean=clip.score, clip_min=jnp.min(clip.per_sample))
    return loss, aux


def embeddings_run(problem: dict, args):
    """Optimise the batch's embeddings themselves (through the cap map)."""
    opt = optax.adam(args.lr)
    raw = problem["start"]
    state = opt.init(raw)
    bt, bank, cos_min = problem["batch_texts"], problem["bank"], problem["cos_min"]

    def loss(r):
        return objective(cap_project(r, bt, cos_min), bt, bank, args.vendi_weight)

    @jax.jit
    def step(r, s):
        (value, aux), g = jax.value_and_grad(loss, has_aux=True)(r)
        updates, s = opt.update(g, s, r)
        return optax.apply_updates(r, updates), s, aux

    history = [jax.device_get(loss(raw)[1])]
    for _ in range(args.steps):
        raw, state, _ = step(raw, state)
        history.append(jax.device_get(loss(raw)[1]))
    return history


def generator_run(problem: dict, args):
    """Optimise a small Flax NNX generator G(z, t) = t + MLP([z, t]) (through the cap map)."""
    from flax import nnx

    class Generator(nnx.Module):
        def __init__(self, d: int, noise: int, hidden: int, *, rngs: nnx.Rngs):
            self.l1 = nnx.Linear(noise + d, hidden, rngs=rngs)
            self.l2 = nnx.Linear(hidden, d, kernel_init=nnx.initializers.normal(1e-3), rngs=rngs)

        def __call__(self, z, t):
            return t + self.l2(jax.nn.gelu(self.l1(jnp.concatenate([z, t], axis=1))))

    bt, bank, cos_min = problem["batch_texts"], problem["bank"], problem["cos_min"]
    model = Generator(args.dim, 16, 128, rngs=nnx.Rngs(args.seed))
    optimizer = nnx.Optimizer(model, optax.adam(args.lr), wrt=nnx.Param)
    z = jax.random.normal(jax.random.key(args.seed), (args.batch, 16))

    def loss(m):
        return objective(cap_project(m(z, bt), bt, cos_min), bt, bank, args.vendi_weight)

    @nnx.jit
    def step(m, o):
        (value, aux), grads = nnx.value_and_grad(loss, has_aux=True)(m)
        o.update(m, grads)
        return aux

    evaluate = nnx.jit(lambda m: loss(m)[1])
    history = [jax.device_get(evaluate(model))]
    for _ in range(args.steps):
        step(model, optimizer)
        history.append(jax.device_get(evaluate(model)))
    return history


def plot(history: list[dict], floor: float, bank_sce: float, path: str) -> str:
    """Score vs step (matplotlib, Agg): SCE of bank ∪ batch and of the batch, Vendi, CLIPScore."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(len(history))
    get = lambda k: np.array([float(h[k]) for h in history])  # noqa: E731
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(steps, get("sce"), label="SCE (bank ∪ batch)")
    a.plot(steps, get("batch_sce"), label="SCE (batch)")
    a.plot(steps, get("vendi"), label="Vendi (batch)", ls="--")
    a.axhline(bank_sce, color="gray", lw=0.8, ls=":", label="SCE (bank alone)")
    a.set_xlabel("step")
    a.set_ylabel("score")
    a.legend()
    b.plot(steps, get("clip_mean"), label="CLIPScore (mean)")
    b.plot(steps, get("clip_min"), label="CLIPScore (min)")
    b.axhline(floor, color="red", lw=0.8, ls="--", label="floor")
    b.set_xlabel("step")
    b.legend()
    fig.suptitle("diversity guidance with clipcore.functional")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--bank", type=int, default=2000)
    p.add_argument("--prompts", type=int, default=10)
    p.add_argument("--floor", type=float, default=1.25, help="CLIPScore floor (2.5·cos), per image")
    p.add_argument("--vendi-weight", type=float, default=0.0, help="weight of the batch's log Vendi")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--generator", action="store_true", help="optimise a Flax NNX generator's parameters")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="diversity_guidance")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse(argv)
    t0 = time.perf_counter()
    problem = make_problem(args)
    history = (generator_run if args.generator else embeddings_run)(problem, args)
    seconds = time.perf_counter() - t0
    rows = [{k: float(v) for k, v in h.items()} for h in history]
    print(f"bank: {args.bank} pairs, SCE {problem['bank_sce']:.3f}; batch: {args.batch} images, "
          f"{args.prompts} prompts, d = {args.dim}; CLIPScore floor {args.floor}")
    print(f"{'step':>5} {'SCE(bank∪batch)':>16} {'SCE(batch)':>11} {'Vendi':>8} {'CLIP mean':>10} {'CLIP min':>9}")
    for i in sorted(set(range(0, len(rows), max(1, args.steps // 10))) | {len(rows) - 1}):
        r = rows[i]
        print(f"{i:5d} {r['sce']:16.4f} {r['batch_sce']:11.4f} {r['vendi']:8.3f} {r['clip_mean']:10.4f} "
              f"{r['clip_min']:9.4f}")
    os.makedirs(args.out, exist_ok=True)
    png = plot(rows, args.floor, problem["bank_sce"], os.path.join(args.out, "guidance.png"))
    out = dict(args=vars(args), bank_sce=problem["bank_sce"], seconds=seconds, history=rows, plot=png)
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(f"{seconds:.1f} s; wrote {png} and {os.path.join(args.out, 'history.json')}")
    return out


if __name__ == "__main__":
    main()
