"""The compiled eigenvalue solver against XLA's and SciPy's, in one run.

clipcore._ffi.eigvalsh (LAPACK ?syevr, no vectors; a batch solved
concurrently on XLA's CPU pool) against jnp.linalg.eigvalsh (XLA's CPU eigh,
which always forms eigenvectors) and scipy.linalg.eigvalsh.

A compiled eigh (?syevd with vectors) was tried and dropped: 0.81-0.91x of
jnp.linalg.eigh at n = 500 and 1024 (OpenBLAS held at one thread beside
XLA's pool), so eigenvectors come from jnp.linalg.eigh.

Usage: python bench/bench_linalg.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sl

from clipcore import _ffi

jax.config.update("jax_enable_x64", True)


def best(fn, *args, repeat=9):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def main() -> None:
    print(f"# bench_linalg {time.strftime('%Y-%m-%d')}  jax {jax.__version__}  {_ffi.blas_info().split(';')[0]}")
    print(f"{'case':34s} {'clipcore':>16s} {'jnp.linalg':>16s} {'scipy':>16s}  jnp/clipcore")
    rng = np.random.default_rng(0)
    for n in (500, 1024):
        for batch in (None, 3):
            shape = (n, n + 100) if batch is None else (batch, n, n + 100)
            a = rng.standard_normal(shape)
            k = a @ np.swapaxes(a, -1, -2) / shape[-1]
            kj = jnp.asarray(k)
            label = f"eigvalsh f64 n={n}" + ("" if batch is None else f" batch={batch}")
            c = best(jax.jit(_ffi.eigvalsh), kj)
            j = best(jax.jit(jnp.linalg.eigvalsh), kj)
            s = best(lambda m: [sl.eigvalsh(x) for x in (m if m.ndim == 3 else [m])], k)
            print(f"{label:34s} {c[0]*1e3:7.1f}/{c[1]*1e3:6.1f}ms {j[0]*1e3:7.1f}/{j[1]*1e3:6.1f}ms "
                  f"{s[0]*1e3:7.1f}/{s[1]*1e3:6.1f}ms  {j[0]/c[0]:5.2f}x")
    print("(best/median of 9)")


if __name__ == "__main__":
    main()
