"""The paper's settings at the paper's n, side by side with their floors, in one run (issue 18).

1. Exact Gaussian SCE (the default method, dual n×n) at n = 6000, d = 64, σ = 3.5 and the median σ,
   against ONE ``numpy.linalg.eigvalsh`` of an n×n matrix timed in the same run, and its distance to a
   dense float64 NumPy computation (eigh of K_T, the filter, both n×n spectra); also n = 10 000 and 16 384
   (the largest n the default takes exactly; above it the default is Nyström).
2. Vendi and RKE of the exact Gaussian kernel at the same n.
3. The reference code's RFF setting: convention="clip-dissection", a given ω, D = 2500 (5000 features),
   n = 6000, at the reference code's default σ = 3.5 and at σ = 0.5 (``--rff-sigma``), against one ``eigvalsh``
   of 5000×5000, and its distance to a NumPy float64 port of the reference algorithm (on clip_like rows, the
   reference kind, and prompts repeated exactly, ``repeated``; ``--data`` picks).
4. Cosine SCE of 10⁶ × 512 float32 embeddings in memory (default dtype: float32 products for float32
   rows), against the syrk floor: half of NumPy's GEMM ``Z.T @ Z`` over the same 65 536-row blocks.

Data: CLIP-like unit-norm embeddings in d = 64 (prompts on the sphere, ten images per prompt with their
own noise and a modality offset), seeded; the exact runs also on the reference fixtures' kind of data
(``--data reference``: prompts around ten centres, no two alike; images 0.7 · prompt + noise) and on prompts
scored with four images each, their text embeddings repeated exactly (``--data repeated``; beside it the
same call with K_T's kept pairs taken from the n×n matrix, its last column the relative difference).

    python bench/bench_paper.py                 # everything (about 10 minutes on 2 cores)
    python bench/bench_paper.py --only exact --n 6000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time
import warnings

import numpy as np

import clipcore

EPS32 = float(np.finfo(np.float32).eps)


def clip_like(n: int, d: int = 64, per_prompt: int = 10, seed: int = 0, text_noise: float = 0.05):
    rng = np.random.default_rng(seed)
    p = max(1, -(-n // per_prompt))  # enough prompts for n rows (n need not be a multiple)
    prompts = rng.standard_normal((p, d))
    t = np.repeat(prompts, per_prompt, axis=0)[:n]
    x = t + 0.9 * rng.standard_normal((n, d)) + 1.5 * rng.standard_normal(d)  # noise + a modality gap
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    return unit(x), unit(t + text_noise * rng.standard_normal((n, d)) if text_noise else t)


def reference_like(n: int, d: int = 64, centers: int = 10, seed: int = 0):
    """The reference fixtures' kind of data (SPEC.md's reference inputs, drawn afresh): prompts around ten
    centres with their own noise (no two alike), images 0.7 · prompt + noise, unit rows."""
    rng = np.random.default_rng(seed)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    c = unit(rng.standard_normal((centers, d)))
    t = unit(c[rng.integers(0, centers, size=n)] + 0.35 * rng.standard_normal((n, d)) / np.sqrt(d))
    x = unit(0.7 * t + 0.5 * rng.standard_normal((n, d)) / np.sqrt(d))
    return x, t


def repeated(n: int, d: int = 64, seed: int = 0):
    """Prompts scored with four images each, their text embeddings repeated exactly (one encoding per
    prompt, as a text-to-image evaluation has): clip_like without the per-row text noise."""
    return clip_like(n, d, per_prompt=4, seed=seed, text_noise=0.0)


DATA = {"clip_like": clip_like, "reference": reference_like, "repeated": repeated}


def timed(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def floor_matrix(n: int) -> np.ndarray:
    """The n×n symmetric matrix whose ``numpy.linalg.eigvalsh`` is the floor."""
    a = np.random.default_rng(1).standard_normal((n, n))
    return a @ np.ascontiguousarray(a.T) / n  # two buffers: NumPy's own dsyrk (a @ a.T) segfaults at n = 16384 here


def eigvalsh_floor(n: int, repeat: int = 1) -> float:
    """The fastest of ``repeat`` calls of ``numpy.linalg.eigvalsh`` on an n×n matrix."""
    a = floor_matrix(n)
    return timed(lambda: np.linalg.eigvalsh(a), repeat)[0]


def dense_sce(x, t, sigma, rtol):
    """SPEC.md's dual form, dense, float64 NumPy (eigh of K_T with vectors, the filter, the spectra)."""
    from scipy.spatial.distance import cdist

    n = x.shape[0]
    kt = np.exp(-cdist(t, t, "sqeuclidean") / (2 * sigma ** 2)) / n
    kx = np.exp(-cdist(x, x, "sqeuclidean") / (2 * sigma ** 2)) / n
    w, u = np.linalg.eigh(kt)
    sh = w + 1e-12
    keep = np.abs(sh) > rtol * np.abs(sh).max()
    f = np.clip(np.where(keep, w / np.where(keep, sh, 1.0), 0.0), 0, 1)
    m = u.T @ kx @ u
    sc = np.sqrt(1 - f)
    c = np.maximum(np.linalg.eigvalsh(sc[:, None] * m * sc[None, :]), 1e-10)
    return float(np.exp(-np.sum(c * np.log(c / c.sum()))))


def bench_exact(ns, check_dense: bool, data: str = "clip_like", repeat: int = 1):
    """``repeat``: the fastest of that many clipcore calls, against the fastest of that many floors."""
    rows = []
    for n in ns:
        x, t = DATA[data](n)
        floor = eigvalsh_floor(n, repeat)
        tag = "" if data == "clip_like" else f" [{data}]"
        for label, sigma in (("σ = 3.5", 3.5), ("median σ", None)):
            sec, r = timed(lambda: clipcore.sce(x, t, kernel="gaussian", sigma=sigma, progress=False), repeat)
            err = abs(r.sce / dense_sce(x, t, r.sigma, n * EPS32) - 1) if check_dense and n <= 6000 else None
            rows.append((f"SCE n={n} {label} ({r.method}){tag}", sec, floor, r.rank_kept, err))
            if data == "repeated":  # the same call with K_T's pairs from the n×n matrix, as without repeats
                with _fraction(0.0):
                    sec0, r0 = timed(lambda: clipcore.sce(x, t, kernel="gaussian", sigma=sigma, progress=False))
                rows.append((f"  same, K_T's pairs from n×n (not the {len(np.unique(t, axis=0))} prompts)", sec0,
                             floor, r0.rank_kept, abs(r0.sce / r.sce - 1)))
        sec, v = timed(lambda: clipcore.vendi(x, kernel="gaussian", progress=False))
        rows.append((f"Vendi n={n} ({v.method}){tag}", sec, floor, None, None))
        sec, v = timed(lambda: clipcore.rke(x, kernel="gaussian", progress=False))
        rows.append((f"RKE n={n} ({v.method}){tag}", sec, floor, None, None))
    return rows


@contextlib.contextmanager
def _fraction(value: float):
    from clipcore._pipeline import passes

    saved, passes.REPEATED_FRACTION = passes.REPEATED_FRACTION, value
    try:
        yield
    finally:
        passes.REPEATED_FRACTION = saved


def reference_port(x, t, omega):
    """The reference code's algorithm (clip-dissection, RFF), NumPy float64."""
    D = omega.shape[1]
    phi = lambda a: np.concatenate([np.cos(a @ omega), np.sin(a @ omega)], 1) / np.sqrt(D)  # noqa: E731
    pt, px = phi(t.astype(np.float64)), phi(x.astype(np.float64))
    n = x.shape[0]
    c_tt, c_tx, c_xx = pt.T @ pt / n, pt.T @ px / n, px.T @ px / n
    inv = np.linalg.pinv(c_tt + 1e-12 * np.eye(2 * D), rcond=2 * D * EPS32, hermitian=True)
    s = c_xx - c_tx.T @ inv @ c_tx
    e = np.maximum(np.linalg.eigvalsh(s), 1e-10)
    return float(np.exp(-np.sum(e * np.log(e / e.sum()))))


def bench_rff(n: int, D: int, check: bool, data=("clip_like",), sigmas=(3.5, 0.5)):
    """σ = 3.5 is the reference code's default (its README and demo, the fixtures' gauss_s3.5_D2500); σ = 0.5
    a sharper kernel, whose C_TT keeps hundreds of directions."""
    rows = []
    floor = eigvalsh_floor(2 * D, repeat=3)  # the VM's speed drifts: the fastest of three, and of two calls below
    for kind in data:
        x, t = DATA[kind](n)
        for sigma in sigmas:
            omega = np.random.default_rng(2).standard_normal((x.shape[1], D)).astype(np.float32) / sigma
            sec, r = timed(lambda: clipcore.sce(x.astype(np.float32), t.astype(np.float32), kernel="gaussian",
                                                omega=omega, convention="clip-dissection", progress=False), repeat=2)
            err = abs(r.sce / reference_port(x, t, omega.astype(np.float64)) - 1) if check else None
            tag = "" if kind == "clip_like" else f" [{kind}]"
            rows.append((f"RFF clip-dissection n={n} D={D} σ={sigma} ({r.method}, {r.dtype}){tag}", sec, floor,
                         r.rank_kept, err))
    return rows


def bench_cosine(n: int, d: int = 512):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, d), dtype=np.float32)
    t = rng.standard_normal((n, d), dtype=np.float32)
    sec, r = timed(lambda: clipcore.sce(x, t, progress=False), repeat=2)

    b = 65536
    z = np.concatenate([t[:b], x[:b]], axis=1)
    z2 = z.copy()  # a second buffer: NumPy calls sgemm (Z.T @ Z of one buffer would be its ssyrk)

    def floor():  # the GEMM alone, block after block (the same FLOPs as n rows; no copies timed)
        for i in range(0, n, b):
            zi, z2i = (z, z2) if i + b <= n else (z[:n - i], z2[:n - i])
            zi.T @ z2i

    def syrk():  # NumPy's ssyrk over the same blocks, for comparison
        for i in range(0, n, b):
            zi = z if i + b <= n else z[:n - i]
            zi.T @ zi

    gemm, _ = timed(floor, repeat=2)
    syrk_s, _ = timed(syrk, repeat=2)
    return [(f"cosine SCE {n}×{d} float32 in memory ({r.dtype} products)", sec, gemm / 2, None, None),
            ("  numpy ssyrk Z.T @ Z over the same blocks", syrk_s, gemm / 2, None, None)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("exact", "rff", "cosine"), default=None)
    ap.add_argument("--n", type=int, nargs="*", default=None, help="rows of the exact runs (default 6000 10000 16384)")
    ap.add_argument("--data", choices=tuple(DATA), nargs="*", default=None,
                    help="data of the exact runs (default all: clip_like, reference, repeated)")
    ap.add_argument("--rff-n", type=int, default=6000)
    ap.add_argument("--rff-sigma", type=float, nargs="*", default=[3.5, 0.5],
                    help="σ of the RFF runs (3.5: the reference code's default)")
    ap.add_argument("--cosine-n", type=int, default=1_000_000)
    ap.add_argument("--no-check", action="store_true", help="skip the dense float64 references")
    ap.add_argument("--repeat", type=int, default=1,
                    help="exact runs: the fastest of this many clipcore calls and of this many floors")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, clipcore {clipcore.__version__}")
    print(f"{'workload':58s} {'clipcore s':>10s} {'floor s':>9s} {'ratio':>6s} {'kept':>5s} {'rel. err':>9s}",
          flush=True)

    def show(rows):  # each row as soon as it is measured
        for name, sec, floor, kept, err in rows:
            e = "-" if err is None else f"{err:.1e}"
            print(f"{name:58s} {sec:10.2f} {floor:9.2f} {sec / floor:6.2f} {kept if kept is not None else '-':>5} "
                  f"{e:>9s}", flush=True)

    if args.only in (None, "exact"):
        for data in args.data or list(DATA):
            for n in args.n or [6000, 10000, 16384]:
                show(bench_exact([n], not args.no_check, data, args.repeat))
    if args.only in (None, "rff"):
        show(bench_rff(args.rff_n, 2500, not args.no_check, args.data or ("clip_like", "reference", "repeated"),
                       args.rff_sigma))
    if args.only in (None, "cosine"):
        show(bench_cosine(args.cosine_n))
    print("floor: one numpy.linalg.eigvalsh of n×n (exact), of 2D×2D (RFF), half NumPy's GEMM Z.T @ Z (cosine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
