"""What a :mod:`clipcore.functional` call computes with: precision, kernel, ω, σ, primal or dual.

Everything here is decided from Python values and array *shapes* (static under ``jit``), except σ and
ω, which are arrays (σ may be traced; the median heuristic is computed in JAX on the rows).

Precision (SPEC.md; :class:`clipcore._options.Precision`): with x64 enabled, float64 throughout (the
host API's default), or ``dtype="float32"``: float32 features and block products, float64 sums and
linear algebra (the host's ``dtype="float32"``). With x64 off (JAX's default), float32 features and
float32 sums made exact to about one rounding by compensation (Kahan over blocks; the compiled core adds
each block in float64 before its one rounding), and float32 linear algebra. A float64 request that
cannot be honoured (``dtype="float64"``, or NumPy float64 inputs, with x64 off) warns once per process.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._options import EPS32, KERNELS, Precision, resolve_backend
from ..kernels import FeatureMap, draw_omega

__all__ = ["PrecisionWarning", "resolve_dtype", "as_key", "median_sigma", "sample_sq_distances", "KernelSpec", "kernel_spec",
           "sigma_and_omega", "choose_path", "default_rtol", "ridge_mode", "check_clamp", "backend_of"]

SIGMA_SAMPLE = 2000
_warned: set[str] = set()


class PrecisionWarning(UserWarning):
    """A float64 computation was asked for but JAX's x64 mode is off: float32 is used."""


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, PrecisionWarning, stacklevel=4)


def _is_host64(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == np.float64


def resolve_dtype(dtype: Any, *arrays: Any) -> Precision:
    """The precision of a call (see the module docstring), warning once if float64 cannot be had.

    Args:
      dtype: ``None`` (float64 with x64 on, else float32), ``"float32"`` or ``"float64"``.
      arrays: the inputs (a NumPy float64 input with x64 off is a float64 request).
    """
    x64 = bool(jax.config.jax_enable_x64)
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            dt = None
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype: expected None, 'float32' or 'float64', got {dtype!r}")
    want64 = (dtype is not None and np.dtype(dtype) == np.float64) or (dtype is None and any(map(_is_host64, arrays)))
    if want64 and not x64:
        _warn_once("clipcore.functional: float64 was asked for (dtype='float64' or float64 inputs) but JAX's x64 "
                   "mode is off, so float32 is used (compensated sums, float32 linear algebra); enable it with "
                   "jax.config.update('jax_enable_x64', True) for float64")
    if not x64:
        return Precision(jnp.dtype(jnp.float32), jnp.dtype(jnp.float32))
    if dtype is not None and np.dtype(dtype) == np.float32:
        return Precision(jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))
    return Precision(jnp.dtype(jnp.float64), jnp.dtype(jnp.float64))


def as_key(key: Any) -> jax.Array:
    """``None`` (seed 0), an int seed or a ``jax.random`` key (typed, or raw ``uint32[2]``; may be traced).

    An int gives ``jax.random.key(seed)``: the same draw as the host API's ``key=seed``.
    """
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
        if int(key) < 0:
            raise ValueError(f"key: expected a non-negative int seed or a jax.random key, got {int(key)}")
        return jax.random.key(int(key))
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.shape == (2,) and key.dtype == jnp.uint32:
            return jax.random.wrap_key_data(key)
    raise ValueError(f"key: expected an int seed or one jax.random key, got {key!r}")


def median_sigma(x: jax.Array, *, max_samples: int = SIGMA_SAMPLE, seed: int = 0) -> jax.Array:
    """The median heuristic in JAX: the median pairwise Euclidean distance of (a seeded sample of) the rows.

    The JAX twin of :func:`clipcore.kernels.median_sigma` (the host API's default σ): the same rows (at
    most ``max_samples``, chosen by ``numpy.random.default_rng(seed)`` from the static n), the same
    float64-when-available arithmetic, so the same σ. Wrapped in ``jax.lax.stop_gradient``: σ is a
    statistic of the data, not differentiated (the gradient of a score is taken at fixed σ). Identical
    rows give σ = 0 (the Gaussian kernel then is 1 on duplicates, 0 elsewhere); pass ``sigma=``.

    Args:
      x: ``[n, d]`` rows (n ≥ 2).

    Returns:
      ``[]`` σ in x's dtype.
    """
    _, d2, _ = sample_sq_distances(x, max_samples=max_samples, seed=seed)
    return jnp.sqrt(jnp.maximum(jnp.median(d2), 0.0))


def sample_sq_distances(x: jax.Array, *, max_samples: int = SIGMA_SAMPLE,
                        seed: int = 0) -> tuple[jax.Array, jax.Array, tuple[np.ndarray, np.ndarray]]:
    """The rows a median heuristic looks at and their pairwise squared distances.

    At most ``max_samples`` rows, chosen by ``numpy.random.default_rng(seed)`` from the static n (as
    :func:`clipcore.kernels.median_sigma` chooses them), ``stop_gradient``-ed.

    Returns:
      ``(rows [m, d], d2 [m(m−1)/2], (i, j))``: the sampled rows, the squared distances of the pairs i < j
      (clipped at 0) and those pairs' indices.
    """
    n = x.shape[0]
    if n < 2:
        raise ValueError("sigma: the median heuristic needs at least two embeddings; pass sigma=")
    if n > max_samples:
        x = x[np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))]
    x = jax.lax.stop_gradient(x)
    sq = jnp.sum(x * x, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * jnp.matmul(x, x.T, precision=jax.lax.Precision.HIGHEST)
    iu = np.triu_indices(x.shape[0], k=1)
    return x, jnp.maximum(d2[iu], 0.0), iu


class KernelSpec(NamedTuple):
    """The static part of a kernel: ``kind`` ``"cosine"`` | ``"rff"`` | ``"exact"``, the feature map
    (None for the exact kernel), the RFF frequency count, and whether ω must be drawn from ``key``."""

    kind: str
    fmap: FeatureMap | None
    num_frequencies: int | None
    draw: bool


def kernel_spec(kernel: Any, *, sigma: Any, omega: Any, key: Any, rff_features: Any) -> KernelSpec:
    """Validate the kernel options (an option the kernel does not use is refused, naming it)."""
    V.check_choice(kernel, "kernel", KERNELS)
    if kernel == "cosine":
        for name, value in (("sigma", sigma), ("omega", omega), ("key", key), ("rff_features", rff_features)):
            if value is not None:
                raise ValueError(f"{name}: only used by kernel='gaussian' (got kernel='cosine')")
        return KernelSpec("cosine", FeatureMap("cosine"), None, False)
    if sigma is not None and not isinstance(sigma, jax.Array):
        V.check_sigma(sigma)
    num = V.check_positive_int(rff_features, "rff_features")
    if omega is not None:
        if jnp.ndim(omega) != 2:
            raise ValueError(f"omega: expected [d, D] frequencies, got shape {tuple(jnp.shape(omega))}")
        if num is not None and jnp.shape(omega)[1] != num:
            raise ValueError(f"omega: has {jnp.shape(omega)[1]} frequencies but rff_features = {num}")
        if key is not None:
            raise ValueError("key: pass either omega= or key=, not both")
        num = int(jnp.shape(omega)[1])
        return KernelSpec("rff", FeatureMap("rff", num), num, False)
    if num is not None:
        return KernelSpec("rff", FeatureMap("rff", num), num, True)
    if key is not None:
        raise ValueError("key: only used to draw RFF frequencies; pass rff_features= too (or omega=)")
    return KernelSpec("exact", None, None, False)


def sigma_and_omega(spec: KernelSpec, rows: jax.Array, sigma: Any, omega: Any, key: Any, dtype) -> tuple:
    """σ (given, or :func:`median_sigma` of ``rows``) and ω (given, or drawn) as arrays of ``dtype``.

    ω = z / σ with z the float32 N(0, 1) draw of ``key`` (:func:`clipcore.kernels.draw_omega`). A σ given
    as a Python or NumPy number, or the median heuristic's, divides in float32 as the host API does (same
    ω, same scores); a σ given as a ``jax.Array`` (traced or not: ``jax.grad`` in σ, a σ argument of a
    jitted function) divides in ``dtype``, so ω and the scores are smooth, differentiable functions of σ.
    The cosine kernel returns ``(None, None)``.
    """
    if spec.kind == "cosine":
        return None, None
    if omega is not None:
        return (None if sigma is None else jnp.asarray(sigma, dtype)), jnp.asarray(omega, dtype)
    smooth = isinstance(sigma, jax.Array)
    sig = median_sigma(rows.astype(dtype)) if sigma is None else jnp.asarray(sigma, dtype)
    if spec.kind == "exact":
        return sig, None
    z = draw_omega(as_key(key), rows.shape[1], spec.num_frequencies, 1.0)  # float32 N(0, 1), as the host draws
    if smooth:
        return sig, z.astype(dtype) / sig
    # the barriers keep XLA from folding the division into the draw or into a product by 1/σ (other bits)
    z, s32 = jax.lax.optimization_barrier((z, sig.astype(jnp.float32)))
    return sig, (z / s32).astype(dtype)


def choose_path(spec: KernelSpec, n: int, dims: tuple[int, ...], method: str) -> str:
    """``"primal"`` (D×D) or ``"dual"`` (n×n): the host API's auto rule for in-memory inputs
    (:func:`clipcore._pipeline.plan.plan_call`: primal when every feature dimension is ≤ n), from shapes."""
    V.check_choice(method, "method", ("auto", "primal", "dual"))
    if spec.kind == "exact":
        if method == "primal":
            raise ValueError("method: the exact Gaussian kernel has no finite primal form; use method='dual' "
                             "(or 'auto'), or rff_features= / omega= for the primal")
        return "dual"
    if method != "auto":
        return method
    return "primal" if max(spec.fmap.dim(d) for d in dims) <= n else "dual"


def default_rtol(rtol: Any, dim: int) -> Any:
    """The pseudo-inverse cutoff: the given rtol, else dim · eps(float32) whatever the dtype (SPEC.md)."""
    if rtol is None:
        return dim * EPS32
    if not isinstance(rtol, jax.Array):
        V.check_number(rtol, "rtol", positive=False)
    return rtol


def ridge_mode(ridge: Any) -> tuple[str, Any]:
    """``(mode, λ)``: ``ridge`` None or 0 → the cut pseudo-inverse; a positive (or traced) λ → the ridge."""
    if ridge is None:
        return "pinv", 0.0
    if isinstance(ridge, jax.core.Tracer):
        return "ridge", ridge
    value = V.check_number(ridge, "ridge", positive=False)
    return ("pinv", 0.0) if value == 0.0 else ("ridge", value)


def check_clamp(clamp: Any) -> float | None:
    """The eigenvalue floor: a positive number (static), or None to drop zero eigenvalues."""
    return V.check_number(clamp, "clamp", positive=True)


def backend_of(backend: Any) -> str:
    """The one backend rule of :func:`clipcore._options.resolve_backend` (``"auto"``: the compiled core on CPU)."""
    return resolve_backend(backend)
