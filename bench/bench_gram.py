"""Gram accumulation G += Φᵀ Φ on CPU: clipcore FFI vs XLA dot vs NumPy, same data.

Usage:
    python bench/bench_gram.py                       # the default table
    python bench/bench_gram.py --sizes 65536x512 --repeats 9
    python bench/bench_gram.py --threading           # strategy / block_rows sweep
    python bench/bench_gram.py --stream              # fori_loop over row blocks

Φ is float32 [b, D]. Timed, round-robin on the same data (so load from other
processes hits all methods alike), best of --repeats after one warm-up:

  ffi     clipcore._ffi.gram_accumulate(G, Φ) under jax.jit, G float64 [D, D]
          (float32 when x64 is off); blocked threaded syrk, float64 accumulation
  ffi32   the same into a float32 G
  jaxdot  jax.jit(lambda p: jnp.dot(p.T, p)) in float32 (XLA's full GEMM)
  numpy   Φ.T @ Φ in float32 (NumPy's BLAS recognises it as syrk)

GFLOP/s counts b·D² (syrk's multiply-adds ×2 / 2: the triangle it computes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

from clipcore import _ffi  # noqa: E402

DEFAULT_SIZES = [(100_000, 1024), (100_000, 512), (200_000, 128)]


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count()
    try:
        load = "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "?"
    blas_np = "?"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        blas_np = f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        pass
    lines = [
        f"date       {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"machine    {platform.node()} {platform.system()} {platform.release()} {platform.machine()}",
        f"cpu        {cpu}, {ncpu} CPUs usable, load avg {load}",
        f"python     {sys.version.split()[0]}; numpy {np.__version__} ({blas_np}); jax {jax.__version__}",
        f"jax device {jax.devices()[0].device_kind} x{len(jax.devices())}",
        f"clipcore   {_ffi.blas_info() if _ffi.available() else _ffi.unavailable_reason()}",
    ]
    return "\n".join(lines)


def _block(x):
    if hasattr(x, "block_until_ready"):
        x.block_until_ready()
    return x


GAP_S = 0.3


def time_round_robin(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Warm each fn once, then time them in turn `repeats` times.

    Sleeps GAP_S before each timed call: after a call, OpenBLAS's worker
    threads (NumPy's copy) and XLA's spin for up to ~0.1 s before sleeping,
    which would slow whichever method runs next on a small machine.
    """
    for fn in fns.values():
        _block(fn())
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            time.sleep(GAP_S)
            t0 = time.perf_counter()
            _block(fn())
            times[k].append(time.perf_counter() - t0)
    return times


def _fmt_row(cols, widths):
    return "  ".join(str(c).rjust(w) for c, w in zip(cols, widths))


def bench_table(sizes, repeats, seed=0):
    rng = np.random.default_rng(seed)
    ffi = jax.jit(_ffi.gram_accumulate)
    jaxdot = jax.jit(lambda p: jnp.dot(p.T, p))
    header = ["b", "D", "method", "best ms", "median ms", "GFLOP/s", "numpy/x", "jaxdot/x"]
    widths = [7, 5, 7, 9, 9, 8, 8, 8]
    print(_fmt_row(header, widths))
    for b, d in sizes:
        phi_np = rng.standard_normal((b, d), dtype=np.float32)
        phi = jnp.asarray(phi_np)
        g64 = jnp.zeros((d, d), jnp.float64)
        g32 = jnp.zeros((d, d), jnp.float32)
        fns = {
            "ffi": lambda: ffi(g64, phi),
            "ffi32": lambda: ffi(g32, phi),
            "jaxdot": lambda: jaxdot(phi),
            "numpy": lambda: phi_np.T @ phi_np,
        }
        # Same numbers from all of them (sanity check, float32 tolerance).
        ref = np.asarray(fns["ffi"]())
        for k in ("ffi32", "jaxdot"):
            got = np.asarray(fns[k]()).astype(np.float64)
            rel = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
            assert rel < 1e-4, (k, rel)
        times = time_round_robin(fns, repeats)
        best = {k: min(v) for k, v in times.items()}
        for k in fns:
            cols = [
                b,
                d,
                k,
                f"{best[k] * 1e3:.1f}",
                f"{statistics.median(times[k]) * 1e3:.1f}",
                f"{b * d * d / best[k] * 1e-9:.1f}",
                f"{best['numpy'] / best[k]:.2f}",
                f"{best['jaxdot'] / best[k]:.2f}",
            ]
            print(_fmt_row(cols, widths), flush=True)
        del phi, phi_np


def bench_threading(sizes, repeats, seed=0):
    """Strategy 'rows' (own threads, 1-thread BLAS) vs 'blas' (OpenBLAS threads), block_rows."""
    rng = np.random.default_rng(seed)
    header = ["b", "D", "strategy", "block", "threads", "best ms", "GFLOP/s"]
    widths = [7, 5, 8, 6, 7, 9, 8]
    print(_fmt_row(header, widths))
    ncpu = len(os.sched_getaffinity(0))
    for b, d in sizes:
        phi = jnp.asarray(rng.standard_normal((b, d), dtype=np.float32))
        g = jnp.zeros((d, d), jnp.float64)
        configs = []
        for strategy in ("rows", "blas"):
            for block in (1024, 2048, 4096, 8192):
                configs.append((strategy, block, ncpu))
        configs.append(("rows", 4096, 1))
        fns = {}
        for strategy, block, threads in configs:
            f = jax.jit(
                lambda g, p, s=strategy, br=block, t=threads: _ffi.gram_accumulate(
                    g, p, strategy=s, block_rows=br, num_threads=t
                )
            )
            fns[(strategy, block, threads)] = lambda f=f: f(g, phi)
        times = time_round_robin(fns, repeats)
        for (strategy, block, threads), ts in times.items():
            t = min(ts)
            print(
                _fmt_row([b, d, strategy, block, threads, f"{t * 1e3:.1f}", f"{b * d * d / t * 1e-9:.1f}"], widths),
                flush=True,
            )


def bench_stream(sizes, repeats, rows=16384, seed=0):
    """The streaming-covariance pattern: fori_loop over row blocks, G carried."""
    rng = np.random.default_rng(seed)
    header = ["b", "D", "rows/blk", "method", "best ms", "GFLOP/s"]
    widths = [7, 5, 8, 10, 9, 8]
    print(_fmt_row(header, widths))
    for b, d in sizes:
        nb = b // rows
        phi = jnp.asarray(rng.standard_normal((nb * rows, d), dtype=np.float32))

        def make(step, g_dtype):
            @jax.jit
            def run(phi):
                def body(i, g):
                    blk = jax.lax.dynamic_slice_in_dim(phi, i * rows, rows, axis=0)
                    return step(g, blk)

                return jax.lax.fori_loop(0, nb, body, jnp.zeros((d, d), g_dtype))

            return lambda: run(phi)

        fns = {
            "ffi G64": make(_ffi.gram_accumulate, jnp.float64),
            "jax G64": make(_ffi.gram_accumulate_jax, jnp.float64),
            "ffi G32": make(_ffi.gram_accumulate, jnp.float32),
            "jax G32": make(_ffi.gram_accumulate_jax, jnp.float32),
        }
        times = time_round_robin(fns, repeats)
        for k, ts in times.items():
            t = min(ts)
            print(_fmt_row([nb * rows, d, rows, k, f"{t * 1e3:.1f}", f"{nb * rows * d * d / t * 1e-9:.1f}"], widths), flush=True)


def _parse_sizes(text):
    out = []
    for item in text.split(","):
        b, d = item.lower().split("x")
        out.append((int(b), int(d)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=_parse_sizes, default=DEFAULT_SIZES, help="e.g. 100000x1024,200000x128")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threading", action="store_true", help="strategy / block_rows sweep instead of the table")
    ap.add_argument("--stream", action="store_true", help="fori_loop over row blocks instead of the table")
    ap.add_argument("--stream-rows", type=int, default=16384)
    ap.add_argument("--gap", type=float, default=GAP_S, help="seconds idle before each timed call")
    args = ap.parse_args(argv)
    globals()["GAP_S"] = args.gap

    print(machine_info())
    print()
    if not _ffi.available():
        print("clipcore FFI unavailable:", _ffi.unavailable_reason())
        return 1
    if args.threading:
        bench_threading(args.sizes, args.repeats)
    elif args.stream:
        bench_stream(args.sizes, args.repeats, rows=args.stream_rows)
    else:
        bench_table(args.sizes, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
