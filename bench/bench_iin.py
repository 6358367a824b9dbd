"""IIN benchmark: training-step time against a PyTorch peer, and edit quality.

Part 1 (speed): one pair-loss Adam step of the IIN (ActNorm → double affine
coupling → permutation, ``--blocks`` blocks, s/t MLPs D/2→hidden×layers→D/2)
in clipcore (JAX, the jitted ``lax.scan`` training loop, ``--chunk`` steps
per call) and in PyTorch eager (the reference design's framework, written
here from SPEC_MODELS.md with the same weights copied over; the two losses at
step 0 are printed side by side as a check). Reports ms/step and the ratio.

Part 2 (quality): fit + ``evaluate_iin`` on the seeded synthetic attribute
set (``--synthetic-dim``) and on Fashion-MNIST PCA features (footwear, light):
reconstruction error, own-factor / best-other probe accuracy, the edit
success rate, and where the edit's lever sits: the share of the z-probe's
class gap moved by setting z̄_F alone (moveF) or the residual alone (moveR)
to the other class's mean.

Part 3 (``--edits-table``): the held-out edit table of the deck's kind of data
(``mixed_attributes``: 6000 × 64-d, three independent binary attributes, tanh of a
random rotation plus a linear term; fit on 4500, edit the 1500 held out; success
= the edited attribute's probe, trained on the original embeddings, flips;
collateral = another attribute's probe flips; worst attribute of each) for the
CPU-sized configuration (4 blocks, hidden 128, lr 1e-3) and its variants, as
the IIN is now (checkpoint chosen on a validation split's edit success, jittered
pairs) and as it was (last step kept, plain pairs), beside the figures the report
of the defect gave (its own draw). Also the memorisation behind the old column:
edits of the training rows and the flow's NLL on training and held-out rows.

    python3 bench/bench_iin.py                       # both parts, defaults below
    python3 bench/bench_iin.py --skip-quality        # speed only
    python3 bench/bench_iin.py --skip-speed --sets synthetic --residual-size 8   # 512-d edit goal
    python3 bench/bench_iin.py --edits-table [--seeds 0,1] [--variants "1500 steps,4000 steps"]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _torch_peer(model, hyper, rho, sizes):
    import torch

    params = model.numpy_params()
    slope = model.config.negative_slope

    def lin(w, b):
        return torch.tensor(w, dtype=torch.float32, requires_grad=True), torch.tensor(b, dtype=torch.float32,
                                                                                       requires_grad=True)

    blocks, leaves = [], []
    for p in params:
        blk = {"loc": torch.tensor(p["loc"], dtype=torch.float32, requires_grad=True),
               "scale": torch.tensor(p["scale"], dtype=torch.float32, requires_grad=True),
               "perm": torch.tensor(p["perm"], dtype=torch.long)}
        leaves += [blk["loc"], blk["scale"]]
        for nm in ("s1", "t1", "s2", "t2"):
            blk[nm] = [lin(w, b) for w, b in p[nm]]
            leaves += [t for wb in blk[nm] for t in wb]
        blocks.append(blk)

    def mlp(layers, x, tanh):
        for w, b in layers[:-1]:
            x = torch.nn.functional.leaky_relu(x @ w + b, slope)
        x = x @ layers[-1][0] + layers[-1][1]
        return torch.tanh(x) if tanh else x

    def forward(x):
        logdet = torch.zeros(x.shape[0])
        h = x.shape[1] // 2
        for blk in blocks:
            x = blk["scale"] * (x + blk["loc"])
            logdet = logdet + torch.log(torch.abs(blk["scale"])).sum()
            a, b = x[:, :h], x[:, h:]
            s = mlp(blk["s1"], a, True)
            b = b * torch.exp(s) + mlp(blk["t1"], a, False)
            logdet = logdet + s.sum(1)
            s = mlp(blk["s2"], b, True)
            a = a * torch.exp(s) + mlp(blk["t2"], b, False)
            logdet = logdet + s.sum(1)
            x = torch.cat([a, b], 1)[:, blk["perm"]]
        return x, logdet

    ids = torch.tensor(np.repeat(np.arange(len(sizes)), sizes))

    def loss_fn(xa, xb, f):
        za, lda = forward(xa)
        zb, ldb = forward(xb)
        m = (ids[None, :] == f[:, None]).float()
        loss = 0.5 * (za ** 2).sum(1) - lda + 0.5 * ((1 - m) * zb ** 2).sum(1) \
            + 0.5 * (m * (zb - rho * za) ** 2).sum(1) / (1 - rho ** 2) - ldb
        return loss.mean()

    opt = torch.optim.Adam(leaves, lr=hyper[0], betas=(hyper[1], hyper[2]))

    def step(xa, xb, f):
        opt.zero_grad()
        loss = loss_fn(xa, xb, f)
        loss.backward()
        opt.step()
        return loss.item()

    return loss_fn, step


def speed(args) -> dict:
    import jax
    import jax.numpy as jnp
    import torch

    from flax import nnx

    from clipcore.models.iin import IIN, IINConfig, PairSampler, pair_loss, pairs_trainer
    from clipcore.models.iin_data import synthetic_attributes

    ds = synthetic_attributes(2048, args.dim, num_attributes=3, seed=0)
    cfg = IINConfig(num_blocks=args.blocks, hidden=args.hidden, hidden_layers=args.layers, batch_size=args.batch)
    model = IIN(cfg).build(args.dim, 3)
    x = jnp.asarray(ds.embeddings)
    model.initialize(x[: args.batch])
    sampler = PairSampler(ds.attributes, np.random.default_rng(0))
    i, j, f = sampler.sample((args.chunk, args.batch))
    hyper = (cfg.learning_rate, *cfg.betas)
    graphdef, params, rest = nnx.split(model.flow, nnx.Param, ...)
    tx, train = pairs_trainer(graphdef, hyper, model.factor_sizes, float(cfg.rho))
    opt = tx.init(params)

    # step-0 loss, both frameworks, same weights and pairs
    za, lda = model.forward(x[i[0]])
    zb, ldb = model.forward(x[j[0]])
    jax_loss0 = float(pair_loss(za, lda, zb, ldb, jnp.asarray(f[0]), model.factor_sizes, cfg.rho))
    torch.set_num_threads(args.threads)
    t_loss, t_step = _torch_peer(model, hyper, cfg.rho, model.factor_sizes)
    xt = torch.tensor(ds.embeddings)
    with torch.no_grad():
        torch_loss0 = float(t_loss(xt[i[0]], xt[j[0]], torch.tensor(f[0])))

    xa, xb, ff = x[jnp.asarray(i)], x[jnp.asarray(j)], jnp.asarray(f)

    def run_jax():
        out = train(params, opt, rest, (xa, xb, ff))
        jax.block_until_ready(out)

    t0 = time.perf_counter()
    run_jax()  # compile + first chunk
    compile_s = time.perf_counter() - t0
    jax_times = []
    for _ in range(args.repeats):
        time.sleep(0.5)
        t0 = time.perf_counter()
        run_jax()
        jax_times.append((time.perf_counter() - t0) / args.chunk)
    t_step(xt[i[0]], xt[j[0]], torch.tensor(f[0]))  # warm-up
    torch_times = []
    for _ in range(args.repeats):
        time.sleep(0.5)
        t0 = time.perf_counter()
        for s in range(args.chunk):
            t_step(xt[i[s]], xt[j[s]], torch.tensor(f[s]))
        torch_times.append((time.perf_counter() - t0) / args.chunk)
    jb, tb = min(jax_times), min(torch_times)
    print(f"IIN training step: D={args.dim}, {args.blocks} blocks, hidden {args.hidden}×{args.layers}, "
          f"batch {args.batch} pairs ({sum(p.size for p in jax.tree.leaves(params)) / 1e6:.1f} M parameters)")
    print(f"  step-0 loss   clipcore {jax_loss0:.6f}   torch {torch_loss0:.6f}")
    print(f"  clipcore (jit scan of {args.chunk})  best {jb * 1e3:8.1f} ms/step  median "
          f"{np.median(jax_times) * 1e3:8.1f}   (compile + first chunk {compile_s:.1f} s)")
    print(f"  torch eager              best {tb * 1e3:8.1f} ms/step  median {np.median(torch_times) * 1e3:8.1f}")
    print(f"  ratio torch / clipcore (best): {tb / jb:.2f}x")
    return {"jax_ms": jb * 1e3, "torch_ms": tb * 1e3, "ratio": tb / jb, "loss0": (jax_loss0, torch_loss0)}


def _logit_moves(m, z_train, a_train, z_test, a_test):
    """Per attribute F: the mean move of F's z-probe logit towards the target class, as a fraction of
    the gap between the two classes' median logits, when z̄_F (``moveF``) or the residual (``moveR``)
    alone is set to the target class's training mean (of attribute F) — where the edit's lever sits."""
    from clipcore.models.iin_eval import probe as _probe

    xtr, xte = np.asarray(z_train, np.float64), np.asarray(z_test, np.float64)
    ztr, zte = np.asarray(m.encode(xtr), np.float64), np.asarray(m.encode(xte), np.float64)
    cuts = np.concatenate([[0], np.cumsum(m.factor_sizes)])
    k = len(m.factor_sizes) - 1
    out = []
    for f in range(k):
        p = _probe(0).fit(xtr, a_train[:, f])
        l0 = p.decision_function(xte)
        own = a_test[:, f]
        gap = abs(np.median(l0[own == 1]) - np.median(l0[own == 0]))
        sign = np.where(own == 0, 1.0, -1.0)
        moves = []
        for g in (f, k):
            lo, hi = cuts[g], cuts[g + 1]
            means = np.stack([ztr[a_train[:, f] == c, lo:hi].mean(0) for c in (0, 1)])
            zz = zte.copy()
            zz[:, lo:hi] = means[1 - own]
            l1 = p.decision_function(np.asarray(m.decode(zz), np.float64))
            moves.append(float(np.mean(sign * (l1 - l0)) / gap))
        out.append(moves)
    return out


def quality(args) -> None:
    from clipcore.models import IIN, IINConfig, evaluate_iin
    from clipcore.models.iin_data import fashion_mnist_attributes, synthetic_attributes

    wanted = args.sets.split(",")
    sets = []
    if "synthetic" in wanted:
        sets.append(("synthetic", synthetic_attributes(args.n, args.synthetic_dim, num_attributes=3, seed=0)))
    if "fashion-mnist" in wanted:
        try:
            sets.append(("fashion-mnist", fashion_mnist_attributes(args.n, args.fashion_dim, seed=0)))
        except FileNotFoundError:
            print("  (Fashion-MNIST not installed: skipped)")
    for name, ds in sets:
        n = ds.embeddings.shape[0]
        ntr = int(0.75 * n)
        sizes = args.factor_sizes
        if sizes not in ("equal", "estimate"):
            sizes = tuple(int(v) for v in sizes.split(","))
            if name != "synthetic":  # K attribute factors of that size, residual = the rest
                sizes = sizes[:1] * len(ds.names) + (ds.embeddings.shape[1] - sizes[0] * len(ds.names),)
        residual = args.residual_size if sizes == "equal" else None
        cfg = IINConfig(num_blocks=args.q_blocks, hidden=args.q_hidden, hidden_layers=args.layers,
                        steps=args.q_steps, learning_rate=args.q_lr, batch_size=128, factor_sizes=sizes,
                        residual_size=residual)
        t0 = time.perf_counter()
        m = IIN(cfg).fit(ds.embeddings[:ntr], ds.attributes[:ntr], names=ds.names, progress=False)
        fit_s = time.perf_counter() - t0
        ev = evaluate_iin(m, ds.embeddings[:ntr], ds.attributes[:ntr], ds.embeddings[ntr:], ds.attributes[ntr:])
        k = len(ds.names)
        binary = all(np.unique(ds.attributes[:, f]).size == 2 for f in range(k))
        moves = _logit_moves(m, ds.embeddings[:ntr], ds.attributes[:ntr], ds.embeddings[ntr:],
                             ds.attributes[ntr:]) if binary else [[np.nan, np.nan]] * k
        print(f"\n{name}: n={n} D={ds.embeddings.shape[1]} factors {list(m.factor_sizes)}; {args.q_blocks} blocks, "
              f"hidden {args.q_hidden}×{args.layers}, {args.q_steps} steps lr {args.q_lr}, fit {fit_s:.0f} s; "
              f"max ‖T⁻¹T(z) − z‖ = {ev.reconstruction_error:.2e}")
        print(f"  {'attribute':10s} {'own':>6s} {'other':>6s} {'resid':>6s} {'chance':>6s} {'zprobe':>6s} "
              f"{'flip':>6s} {'collat':>6s} {'success':>7s} {'moveF':>6s} {'moveR':>6s}")
        for f in range(k):
            other = max(ev.probe_accuracy[g, f] for g in range(k) if g != f) if k > 1 else float("nan")
            print(f"  {ds.names[f]:10s} {ev.probe_accuracy[f, f]:6.3f} {other:6.3f} {ev.probe_accuracy[k, f]:6.3f} "
                  f"{ev.chance[f]:6.3f} {ev.raw_probe_accuracy[f]:6.3f} {ev.flip_rate[f]:6.3f} "
                  f"{ev.collateral_rate[f]:6.3f} {ev.success_rate[f]:7.3f} {moves[f][0]:6.2f} {moves[f][1]:6.2f}")
        print(f"  edit success rate {ev.edit_success:.3f}")


#: The report's figures (its own draw of the same kind): configuration -> (success, collateral), worst attribute.
REPORTED = {"1500 steps": (0.868, 0.139), "residual_size=2": (0.889, 0.122), "factor_sizes=estimate": (0.833, 0.136),
            "4000 steps": (0.721, 0.207)}
VARIANTS = {"1500 steps": {"steps": 1500}, "residual_size=2": {"steps": 1500, "residual_size": 2},
            "factor_sizes=estimate": {"steps": 1500, "factor_sizes": "estimate"}, "4000 steps": {"steps": 4000}}
BEFORE = {"validation_fraction": 0.0, "input_noise": 0.0}


def _flow_nll(m, x) -> float:
    zbar, logdet = m.forward(x)
    return float(np.mean(0.5 * np.sum(np.asarray(zbar, np.float64) ** 2, axis=1) - np.asarray(logdet)))


def _edits_row(seed: int, name: str, before: bool) -> dict:
    from clipcore.models import IIN, IINConfig
    from clipcore.models.iin_data import mixed_attributes
    from clipcore.models.iin_select import EditJudge

    ds = mixed_attributes(6000, 64, seed=seed)
    x, a = ds.embeddings, ds.attributes
    cfg = dict(num_blocks=4, hidden=128, learning_rate=1e-3, seed=seed, **VARIANTS[name], **(BEFORE if before else {}))
    t0 = time.perf_counter()
    m = IIN(IINConfig(**cfg)).fit(x[:4500], a[:4500], progress=False)
    fit_s = time.perf_counter() - t0
    judge = EditJudge(x[:4500], a[:4500], 0)
    held, fitted = judge.rates(m, x[4500:], a[4500:]), judge.rates(m, x[:1500], a[:1500])
    return {"success": held.flip.min(), "collateral": held.collateral.max(), "fit_success": fitted.flip.min(),
            "fit_collateral": fitted.collateral.max(), "nll_fit": _flow_nll(m, x[:4500]),
            "nll_held": _flow_nll(m, x[4500:]), "best_step": m.best_step, "seconds": fit_s}


def edits_table(args) -> None:
    seeds = [int(s) for s in args.seeds.split(",")]
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)} or all")
    print(f"IIN edits, mixed_attributes(6000, 64, seed) fit on 4500, edited 1500 held out; 4 blocks, hidden 128x3, "
          f"lr 1e-3, batch 256; seeds {seeds}. success = worst attribute's flip rate, collateral = worst "
          f"attribute's; 'now' keeps the best validation checkpoint (step in brackets), 'before' the last step\n")
    print("| seed | configuration | now: success / collateral | before: success / collateral | before, on fitted "
          "rows | before: flow NLL fitted / held out | report (its own draw) |")
    print("|---|---|---|---|---|---|---|")
    for seed in seeds:
        for name in names:
            now, old = _edits_row(seed, name, False), _edits_row(seed, name, True)
            rs, rc = REPORTED[name]
            print(f"| {seed} | {name} | {now['success']:.3f} / {now['collateral']:.3f} [{now['best_step']}] | "
                  f"{old['success']:.3f} / {old['collateral']:.3f} | {old['fit_success']:.3f} / "
                  f"{old['fit_collateral']:.3f} | {old['nll_fit']:.1f} / {old['nll_held']:.1f} | {rs:.3f} / {rc:.3f} |",
                  flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--blocks", type=int, default=12)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--chunk", type=int, default=5, help="steps per timed call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--sets", default="synthetic,fashion-mnist", help="quality data sets (comma-separated)")
    p.add_argument("--synthetic-dim", type=int, default=512)
    p.add_argument("--fashion-dim", type=int, default=64)
    p.add_argument("--q-blocks", type=int, default=4)
    p.add_argument("--q-hidden", type=int, default=128)
    p.add_argument("--q-steps", type=int, default=1500)
    p.add_argument("--q-lr", type=float, default=1e-3)
    p.add_argument("--factor-sizes", default="equal",
                   help="'equal', 'estimate' or sizes for the synthetic set (K+1, comma-separated); "
                        "for Fashion-MNIST the first size is used per attribute")
    p.add_argument("--residual-size", type=int, default=None,
                   help="with --factor-sizes equal: the residual's size, the attribute factors share the rest "
                        "(default: an equal chunk; 8 reaches the edit goal on the 512-d synthetic set)")
    p.add_argument("--edits-table", action="store_true", help="only the held-out edit table (part 3)")
    p.add_argument("--seeds", default="0,1", help="--edits-table: data and model seeds")
    p.add_argument("--variants", default="all",
                   help=f"--edits-table: comma list of {', '.join(VARIANTS)} (or all)")
    args = p.parse_args()
    if args.edits_table:
        edits_table(args)
        return
    if not args.skip_speed:
        speed(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()
