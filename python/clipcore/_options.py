"""Options shared by every entry point: one backend resolver, one seed/key rule, one x64 scope,
the precision rule, and the option groups a public call resolves its flat keywords into.

Every group is validated whole when it is built, whichever path the call
then takes (an option of a path not taken is still checked, so a typo never
passes silently).
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _ffi
from . import _validate as V
from ._progress import check_progress

__all__ = [
    "KERNELS", "CONVENTIONS", "METHODS", "BACKENDS", "LANDMARK_METHODS", "ESTIMATES",
    "DEFAULT_ESTIMATE", "TAIL_ESTIMATES", "DEFAULT_TAIL_ESTIMATE", "DEFAULT_RESIDUAL_SAMPLE", "DEFAULT_LANDMARKS", "EPS32",
    "x64", "Precision", "resolve_precision", "precision_for", "resolve_backend", "Seed", "resolve_key",
    "Numerics", "NystromOptions", "Execution", "resolve_numerics", "resolve_nystrom", "resolve_execution",
]

KERNELS = ("cosine", "gaussian")
CONVENTIONS = ("paper", "clip-dissection")
METHODS = ("auto", "primal", "dual", "frobenius")
BACKENDS = ("auto", "jax", "ffi")
LANDMARK_METHODS = ("uniform", "kmeans++", "pivoted-cholesky")
#: How the trace Nyström misses enters the entropies: "projected" (:mod:`clipcore.nystrom_projected`; SCE and
#: Vendi of the Gaussian kernel) and the three tail models of :mod:`clipcore.nystrom_spectra`.
ESTIMATES = ("projected", "residual", "missing-mass", "renormalised")
DEFAULT_ESTIMATE = "projected"
#: The estimates of the tail models alone (Conditional / Information Vendi, whose joint part is a product kernel).
TAIL_ESTIMATES = ("residual", "missing-mass", "renormalised")
DEFAULT_TAIL_ESTIMATE = "residual"
DEFAULT_RESIDUAL_SAMPLE = 2000
DEFAULT_LANDMARKS = 2000
EPS32 = float(np.finfo(np.float32).eps)


# ------------------------------------------------------------------ x64 and precision
def x64():
    """The one x64 scope: enable float64 JAX arrays for a block when they are off (no global switch)."""
    return contextlib.nullcontext() if jax.config.jax_enable_x64 else jax.enable_x64(True)


@dataclasses.dataclass(frozen=True)
class Precision:
    """Feature / block-product dtype and accumulator / linear-algebra dtype.

    ``dtype=None`` or ``"float64"``: everything in float64 (x64 enabled
    locally for the call). ``dtype="float32"``: features and block products
    in float32 (the fast path), accumulated and decomposed in float64.
    """

    feature: Any
    acc: Any

    @property
    def name(self) -> str:
        return jnp.dtype(self.feature).name

    def context(self):
        """x64 for the duration of the call when float64 is needed."""
        return x64() if jnp.dtype(self.acc) == jnp.float64 else contextlib.nullcontext()


def resolve_precision(dtype: Any) -> Precision:
    """``dtype=`` → :class:`Precision`; ``None`` is float64 here (the input-following default is
    :func:`precision_for`)."""
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


def precision_for(dtype: Any, input_dtype: Any, *, kernel: str, score: str) -> Precision:
    """THE precision rule: ``dtype=`` when given; else precision follows the input. float64 inputs stay
    float64; float32 / float16 / bfloat16 inputs (float32 once read) get float32 features and block
    products, accumulated and decomposed in float64 — except SCE through random Fourier features, which keeps
    float64 products in the primal (D×D) and the dual (n×n) form alike: there S = C_XX − R subtracts two
    nearly equal covariances when the prompts explain most of the images, and float32 products moved SCE by
    3e-5 on the reference fixtures (primal, σ = 0.5, D = 200) and by up to 2e-5 on small seeded sets in the
    dual form (n = 40, D = 200: the n×n Grams' inner products run over 2D features), above the 1e-6 every
    float32 path must meet (the others measure ≤ 2e-7; README "Precision")."""
    if dtype is not None:
        return resolve_precision(dtype)
    if input_dtype is None or np.dtype(input_dtype) == np.float64:
        return Precision(jnp.float64, jnp.float64)
    if score == "sce" and kernel == "rff":
        return Precision(jnp.float64, jnp.float64)
    return Precision(jnp.float32, jnp.float64)


# ------------------------------------------------------------------ backend
def resolve_backend(backend: Any) -> str:
    """The one backend rule: ``"auto"`` takes the compiled core on a CPU default device when it
    loaded, else pure JAX; ``"ffi"`` insists on the core (a ``ValueError`` saying why it is not usable);
    ``"jax"`` is pure JAX."""
    V.check_choice(backend, "backend", BACKENDS)
    if backend == "jax":
        return "jax"
    ok = _ffi.available() and jax.default_backend() == "cpu"
    if backend == "ffi":
        if not ok:
            why = _ffi.unavailable_reason() if not _ffi.available() else "not on a CPU device"
            raise ValueError(f"backend: the compiled core is not usable here ({why})")
        return "ffi"
    return "ffi" if ok and _ffi.PREFERRED else "jax"


# ------------------------------------------------------------------ seeds
class Seed(NamedTuple):
    """One randomness source for a call, whichever path uses it.

    Attributes:
      seed: the int seed given (None for a ``jax.random`` key), for provenance.
      key: the ``jax.random`` key (RFF frequencies).
      numpy: an int seed for NumPy generators (landmark pools, subsamples),
        derived from the key's data when a key was given.
    """

    seed: int | None
    key: jax.Array
    numpy: int


def resolve_key(key: Any) -> Seed:
    """The one key rule: ``None`` (seed 0), a non-negative int seed, or a ``jax.random`` key
    (typed, or a raw ``uint32[2]``), accepted by every path (RFF, Nyström, samples)."""
    if key is None:
        return Seed(0, jax.random.key(0), 0)
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
        k = int(key)
        if k < 0:
            raise ValueError(f"key: expected a non-negative int seed or a jax.random key, got {k}")
        return Seed(k, jax.random.key(k), k)
    if isinstance(key, jax.Array):
        typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        if typed and key.shape == ():
            data = np.asarray(jax.random.key_data(key))
            return Seed(None, key, _numpy_seed(data))
        if not typed and key.shape == (2,) and key.dtype == jnp.uint32:
            return Seed(None, jax.random.wrap_key_data(key), _numpy_seed(np.asarray(key)))
    raise ValueError(f"key: expected an int seed or one jax.random key, got {key!r}")


def _numpy_seed(data: np.ndarray) -> int:
    words = [int(w) for w in np.asarray(data, np.uint64).ravel()]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint32)[0])


# ------------------------------------------------------------------ option groups
@dataclasses.dataclass(frozen=True)
class Numerics:
    """How the numbers are computed: precision, pseudo-inverse cutoff or ridge, clamp, convention."""

    precision: Precision
    rtol: float | None
    ridge: float | None
    clamp: float | None
    convention: str
    normalize: bool

    @property
    def mode(self) -> str:
        return "ridge" if self.ridge is not None else "pinv"

    @property
    def ridge_value(self) -> float:
        return self.ridge if self.ridge is not None else 0.0

    def follow(self, precision: Precision) -> "Numerics":
        """These numerics at ``precision`` (the input-following rule, :func:`precision_for`)."""
        return dataclasses.replace(self, precision=precision)

    def rtol_for(self, dim: int) -> float:
        """The cutoff: the given rtol, else dim · eps(float32) whatever the dtype (SPEC.md)."""
        return self.rtol if self.rtol is not None else dim * EPS32


def resolve_numerics(*, dtype: Any = None, rtol: Any = None, ridge: Any = None, clamp: Any = 1e-10,
                     convention: Any = "paper", normalize: Any = False) -> Numerics:
    return Numerics(
        precision=resolve_precision(dtype),
        rtol=V.check_number(rtol, "rtol", positive=False),
        ridge=V.check_number(ridge, "ridge", positive=True),
        clamp=V.check_number(clamp, "clamp", positive=True),
        convention=V.check_choice(convention, "convention", CONVENTIONS),
        normalize=V.check_flag(normalize, "normalize"),
    )


@dataclasses.dataclass(frozen=True)
class NystromOptions:
    """Nyström settings: ``landmarks`` is an int m, ``[m, d]`` points (float, widened), or None (not asked)."""

    landmarks: Any
    landmark_method: str
    estimate: str
    residual_sample: int

    @property
    def requested(self) -> bool:
        return self.landmarks is not None

    @property
    def given_points(self) -> bool:
        return self.landmarks is not None and not isinstance(self.landmarks, int)

    def with_landmarks(self, m: int) -> "NystromOptions":
        return dataclasses.replace(self, landmarks=int(m))


def resolve_nystrom(*, landmarks: Any = None, landmark_method: Any = "pivoted-cholesky",
                    estimate: Any = DEFAULT_ESTIMATE, residual_sample: Any = DEFAULT_RESIDUAL_SAMPLE,
                    estimates: tuple = ESTIMATES) -> NystromOptions:
    if landmarks is not None:
        if isinstance(landmarks, (numbers.Integral, np.integer)) and not isinstance(landmarks, bool):
            landmarks = V.check_positive_int(landmarks, "landmarks")
        elif isinstance(landmarks, bool) or np.ndim(landmarks) != 2:
            raise ValueError(f"landmarks: expected an int m or [m, d] floating-point points, got {landmarks!r}"
                             if np.ndim(landmarks) == 0 else
                             f"landmarks: expected an int m or [m, d] floating-point points, got shape "
                             f"{tuple(np.shape(landmarks))}")
        else:
            landmarks = V.host_rows(landmarks, "landmarks")
    return NystromOptions(
        landmarks=landmarks,
        landmark_method=V.check_choice(landmark_method, "landmark_method", LANDMARK_METHODS),
        estimate=V.check_choice(estimate, "estimate", estimates),
        residual_sample=V.check_positive_int(residual_sample, "residual_sample"),
    )


@dataclasses.dataclass(frozen=True)
class Execution:
    """Where and how the work runs: backend, rows per block, progress, device mesh (resolved)."""

    backend: str
    block_size: int | None
    progress: bool | None
    mesh: Any = None


def resolve_execution(*, backend: Any = "auto", block_size: Any = None, progress: Any = None,
                      mesh: Any = None) -> Execution:
    """``mesh`` is passed in already resolved (:func:`clipcore.sharding.resolve_mesh`)."""
    return Execution(resolve_backend(backend), V.check_positive_int(block_size, "block_size"),
                     check_progress(progress), mesh)
