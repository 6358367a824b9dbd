"""Resolution of the user's options into static configuration.

Shared by :mod:`clipcore.scores` and :mod:`clipcore.editing`: which feature
map, which ω, which σ, which precision, which backend.  Nothing here does
math on the embeddings beyond the σ heuristic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate as V
from .kernels import FeatureMap, draw_omega, median_sigma

KERNELS = ("cosine", "gaussian")
CONVENTIONS = ("paper", "clip-dissection")
METHODS = ("auto", "primal", "dual")
BACKENDS = ("auto", "jax", "ffi")
EPS32 = float(np.finfo(np.float32).eps)


@dataclasses.dataclass(frozen=True)
class Precision:
    """Feature / block-product dtype and accumulator / linear-algebra dtype.

    ``dtype=None`` or ``"float64"`` (default): features, block products,
    accumulation and all D×D / n×n linear algebra in float64 (x64 is enabled
    locally for the call; no global switch is touched).  Correct to rounding
    in float64 for float32 inputs.
    ``dtype="float32"``: features and block products in float32 (the fast
    path: float32 GEMMs), accumulated across blocks and decomposed in float64.
    The error is that of a float32 GEMM over one block (see README for the
    measured agreement with float64).
    """

    feature: Any
    acc: Any

    @property
    def name(self) -> str:
        return jnp.dtype(self.feature).name

    def context(self):
        """Enable x64 for the duration of the call when float64 is needed."""
        if jnp.dtype(self.acc) == jnp.float64 and not jax.config.jax_enable_x64:
            return jax.enable_x64(True)
        return contextlib.nullcontext()


def resolve_precision(dtype: Any) -> Precision:
    if dtype is None:
        return Precision(jnp.float64, jnp.float64)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype: expected None, 'float32' or 'float64', got {dtype!r}") from None
    if dt == np.float32:
        return Precision(jnp.float32, jnp.float64)
    if dt == np.float64:
        return Precision(jnp.float64, jnp.float64)
    raise ValueError(f"dtype: expected None, 'float32' or 'float64', got {dtype!r}")


def to_user(a: jax.Array) -> jax.Array:
    """Arrays handed back to the user live in the user's x64 setting."""
    if a.dtype == jnp.float64 and not jax.config.jax_enable_x64:
        return np.asarray(a).astype(np.float32)
    return a


@dataclasses.dataclass(frozen=True)
class KernelSetup:
    """The resolved kernel: feature map (or exact), ω, σ and seed."""

    kernel: str
    fmap: FeatureMap | None  # None: exact Gaussian kernel (dual only)
    omega: jax.Array | None
    sigma: float | None
    seed: int | None
    normalize: bool

    @property
    def exact(self) -> bool:
        return self.fmap is None

    @property
    def method_name(self) -> str:
        if self.kernel == "cosine":
            return "cosine"
        return "exact" if self.exact else "rff"



def _seed_and_key(key: Any) -> tuple[int | None, jax.Array]:
    if key is None:
        return 0, jax.random.key(0)
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
        return int(key), jax.random.key(int(key))
    if isinstance(key, jax.Array):
        return None, key
    raise ValueError(f"key: expected an int seed or a jax.random key, got {key!r}")


def resolve_kernel(
    kernel: str,
    *,
    sigma: Any,
    rff_features: Any,
    omega: Any,
    key: Any,
    normalize: bool,
    convention: str,
    sample: jax.Array,
    dims: tuple[int, ...],
) -> KernelSetup:
    """Validate kernel options and build ω / σ.

    Args:
      sample: embeddings the σ median heuristic is computed on (images), or
        a callable returning them (read only when σ is needed).
      dims: input dimensions of every set that shares the feature map.
    """
    V.check_choice(kernel, "kernel", KERNELS)
    V.check_choice(convention, "convention", CONVENTIONS)
    if kernel == "cosine":
        for name, value in (("rff_features", rff_features), ("omega", omega), ("sigma", sigma)):
            if value is not None:
                raise ValueError(f"{name}: only used by kernel='gaussian' (got kernel='cosine')")
        fmap = FeatureMap("identity") if convention == "clip-dissection" else FeatureMap("cosine")
        return KernelSetup("cosine", fmap, None, None, None, False)

    sigma = V.check_sigma(sigma)
    num = V.check_positive_int(rff_features, "rff_features")
    def prepared_sample():
        x = np.asarray(sample() if callable(sample) else sample)
        return x / np.linalg.norm(x, axis=1, keepdims=True) if normalize else x

    seed = None
    if omega is not None:
        omega = V.as_embeddings(omega, "omega")
        if omega.shape[0] != dims[0]:
            raise ValueError(
                f"omega: shape {tuple(omega.shape)} but the embeddings have d = {dims[0]}; "
                "omega must be [d, D]"
            )
        if num is not None and omega.shape[1] != num:
            raise ValueError(
                f"omega: has {omega.shape[1]} frequencies but rff_features = {num}"
            )
        num = int(omega.shape[1])
        if key is not None:
            raise ValueError("key: pass either omega= or key=, not both")
    if num is None:
        if sigma is None:
            sigma = median_sigma(prepared_sample())
        return KernelSetup("gaussian", None, None, sigma, None, bool(normalize))
    if omega is None:
        if sigma is None:
            sigma = median_sigma(prepared_sample())
        seed, k = _seed_and_key(key)
        omega = draw_omega(k, dims[0], num, sigma)
    return KernelSetup("gaussian", FeatureMap("rff", num, bool(normalize)), omega, sigma, seed, bool(normalize))


def resolve_backend(backend: str) -> str:
    """``"auto"`` picks the compiled core where it exists and is the faster."""
    V.check_choice(backend, "backend", BACKENDS)
    if backend == "jax":
        return "jax"
    try:
        from . import _ffi
    except ImportError as exc:  # pragma: no cover - broken install
        ok, why, preferred = False, str(exc), False
    else:
        ok = _ffi.available() and jax.default_backend() == "cpu"
        why = _ffi.unavailable_reason() if not _ffi.available() else "not on a CPU device"
        preferred = getattr(_ffi, "PREFERRED", True)
    if backend == "ffi":
        if not ok:
            raise ValueError(f"backend: the compiled core is not usable here ({why})")
        return "ffi"
    return "ffi" if ok and preferred else "jax"
