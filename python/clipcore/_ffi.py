"""The compiled core (``clipcore._ext``) as XLA FFI calls, and its pure-JAX twins.

The in-place Gram accumulation

    G_out = G_in + Φᵀ Φ,      Φ: [b, D] float32|float64,  G: [D, D] float32|float64

computed on CPU by a threaded, blocked BLAS ``syrk`` (scipy-openblas32):
float32 Φ is multiplied in sub-blocks of at most ``block_rows`` rows (4096 by
default) in float32, each sub-block's Gram added to a float64 accumulator, so
the error does not grow with the number of rows; float64 Φ goes through
``dsyrk``. G_in is added in float64 and the full symmetric result is rounded
once to G's dtype. Rows are split over threads (XLA's CPU thread pool, one
float64 accumulator each, single-threaded BLAS).

Also the LAPACK eigenvalue solver (``eigvalsh``) and the Nyström /
Gaussian-kernel core (``nystrom_accumulate``, ``gaussian_sq_frobenius``,
``pivoted_cholesky``; see the section at the end of this file).

Importing this module loads the extension and registers its FFI targets for
platform ``"cpu"`` (once). If the extension cannot be loaded, ``available()``
is False, ``unavailable_reason()`` says why, and callers use the pure-JAX
twin :func:`gram_accumulate_jax` instead.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "available",
    "unavailable_reason",
    "blas_info",
    "gram_accumulate",
    "gram_accumulate_jax",
    "joint_gram_accumulate",
    "joint_gram_accumulate_jax",
    "GRAM_TARGET",
    "JOINT_GRAM_TARGET",
    "EIGVALSH_TARGET",
    "eigvalsh",
    "PREFERRED",
]

#: FFI target name of the Gram accumulation (platform "cpu").
GRAM_TARGET = "clipcore_gram_accumulate"

#: FFI target name of the packed joint Gram [f(A) | f(B)] (platform "cpu").
JOINT_GRAM_TARGET = "clipcore_joint_gram_accumulate"

#: FFI target name of the LAPACK eigenvalue solver (platform "cpu").
EIGVALSH_TARGET = "clipcore_eigvalsh"

#: Whether "auto" backends should prefer the compiled core on CPU: measured
#: faster than XLA's dot (which computes the full Φᵀ Φ GEMM, twice syrk's
#: flops), measured with bench/bench_gram.py.
PREFERRED = True

_STRATEGIES = {"rows": 0, "blas": 1}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_lock = threading.Lock()
_ext: Any = None
_error: str | None = None
_registered = False
_cuda_registered = False


def _preload_openblas() -> None:
    """Load scipy-openblas32's library globally before the extension.

    The extension's RPATH ($ORIGIN/../scipy_openblas32/lib) finds it in a
    normal install; preloading covers editable installs and unusual layouts
    (the dynamic linker then matches the already loaded soname).
    """
    try:
        import scipy_openblas32 as sob
    except ImportError:
        return
    path = os.path.join(sob.get_lib_dir(), sob.get_library(True))
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        pass


def _load() -> None:
    global _ext, _error, _registered
    with _lock:
        if _registered or _error is not None:
            return
        try:
            _preload_openblas()
            from . import _ext as ext  # type: ignore[attr-defined]
        except Exception as exc:  # ImportError, OSError (missing BLAS), ...
            _error = f"clipcore._ext could not be imported: {type(exc).__name__}: {exc}"
            return
        try:
            for name, capsule in ext.registrations().items():
                jax.ffi.register_ffi_target(name, capsule, platform="cpu")
        except Exception as exc:
            _error = f"registering clipcore FFI targets failed: {type(exc).__name__}: {exc}"
            return
        _ext = ext
        _registered = True
        cuda = getattr(ext, "cuda_registrations", None)  # built with CLIPCORE_ENABLE_CUDA=ON
        if cuda is not None:
            global _cuda_registered
            try:
                for name, capsule in cuda().items():
                    jax.ffi.register_ffi_target(name, capsule, platform="CUDA")
                _cuda_registered = True
            except Exception:  # a CPU-only jaxlib: the CUDA handlers stay unused
                _cuda_registered = False


_load()


def cuda_available() -> bool:
    """True when the extension was built with CUDA handlers and they are registered (platform "CUDA")."""
    return _cuda_registered


def available() -> bool:
    """True when the compiled extension is loaded and its targets registered."""
    return _registered


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (None when it is True)."""
    return None if _registered else (_error or "not loaded")


def blas_info() -> str:
    """The linked BLAS, its thread setting and the extension's build flags."""
    if not _registered:
        raise RuntimeError(unavailable_reason())
    return _ext.blas_info()


def _check(G, phi) -> tuple[np.dtype, np.dtype]:
    g_shape, p_shape = tuple(np.shape(G)), tuple(np.shape(phi))
    g_dt, p_dt = np.dtype(G.dtype), np.dtype(phi.dtype)
    if len(p_shape) != 2:
        raise ValueError(f"gram_accumulate: phi must be rank 2 [b, D], got shape {list(p_shape)}")
    d = p_shape[1]
    if g_shape != (d, d):
        raise ValueError(
            f"gram_accumulate: G must be [D, D] with D = phi.shape[1] = {d}, got {list(g_shape)}"
        )
    if p_dt not in _FLOATS:
        raise ValueError(f"gram_accumulate: phi dtype must be float32 or float64, got {p_dt}")
    if g_dt not in _FLOATS:
        raise ValueError(f"gram_accumulate: G dtype must be float32 or float64, got {g_dt}")
    return g_dt, p_dt


def _attrs(block_rows, num_threads, strategy) -> dict[str, np.int64]:
    attrs: dict[str, np.int64] = {}
    if block_rows is not None:
        if int(block_rows) < 1:
            raise ValueError(f"gram_accumulate: block_rows must be >= 1, got {block_rows}")
        attrs["block_rows"] = np.int64(block_rows)
    if num_threads is not None:
        if int(num_threads) < 1:
            raise ValueError(f"gram_accumulate: num_threads must be >= 1, got {num_threads}")
        attrs["num_threads"] = np.int64(num_threads)
    if strategy is not None:
        if strategy not in _STRATEGIES:
            raise ValueError(
                f"gram_accumulate: strategy must be one of {sorted(_STRATEGIES)}, got {strategy!r}"
            )
        attrs["strategy"] = np.int64(_STRATEGIES[strategy])
    return attrs


def gram_accumulate(
    G: jax.Array,
    phi: jax.Array,
    *,
    block_rows: int | None = None,
    num_threads: int | None = None,
    strategy: str | None = None,
) -> jax.Array:
    """``G + Φᵀ Φ`` through the compiled core (XLA FFI, CPU), G updated in place.

    Usable inside ``jax.jit`` and loop bodies (``lax.fori_loop``/``scan``);
    the output aliases G (``input_output_aliases={0: 0}``), so a loop carry is
    updated without a copy. On a non-CPU backend the pure-JAX twin runs
    instead (``lax.platform_dependent``).

    Args:
      G: [D, D] float32 or float64 accumulator (used as given; need not be
        symmetric).
      phi: [b, D] float32 or float64 rows; b may be 0.
      block_rows: rows per float32 ``ssyrk`` sub-block (default 4096); the
        float32 rounding error is that of one sub-block.
      num_threads: threads for this call (default: ``CLIPCORE_NUM_THREADS`` or
        the CPUs this process may use).
      strategy: ``"rows"`` (default: rows split over threads, one float64
        accumulator each) or ``"blas"`` (OpenBLAS's own threads).

    Returns:
      [D, D] array of G's dtype: G + Φᵀ Φ, accumulated in float64.

    Raises:
      ValueError: bad shapes or dtypes.
      RuntimeError: the compiled extension is not available
        (see :func:`unavailable_reason`).
    """
    _check(G, phi)
    if not _registered:
        raise RuntimeError(f"gram_accumulate: {unavailable_reason()}")
    attrs = _attrs(block_rows, num_threads, strategy)
    G = jnp.asarray(G)
    phi = jnp.asarray(phi)

    def on_cpu(g, p):
        call = jax.ffi.ffi_call(
            GRAM_TARGET,
            jax.ShapeDtypeStruct(g.shape, g.dtype),
            input_output_aliases={0: 0},
        )
        return call(g, p, **attrs)

    return jax.lax.platform_dependent(G, phi, cpu=on_cpu, cuda=on_cpu if _cuda_registered else gram_accumulate_jax,
                                      default=gram_accumulate_jax)


def _check_joint(G, A, B) -> None:
    a_shape, b_shape, g_shape = tuple(np.shape(A)), tuple(np.shape(B)), tuple(np.shape(G))
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise ValueError(f"joint_gram_accumulate: A and B must be rank 2, got shapes {list(a_shape)} and {list(b_shape)}")
    if a_shape[0] != b_shape[0]:
        raise ValueError(
            f"joint_gram_accumulate: A and B must have the same rows (paired), got {list(a_shape)} and {list(b_shape)}"
        )
    d = a_shape[1] + b_shape[1]
    if g_shape != (d, d):
        raise ValueError(f"joint_gram_accumulate: G must be [{d}, {d}] (dA + dB), got {list(g_shape)}")
    a_dt, b_dt, g_dt = (np.dtype(jnp.result_type(v)) for v in (A, B, G))
    if a_dt not in _FLOATS or b_dt != a_dt:
        raise ValueError(f"joint_gram_accumulate: A and B must share float32 or float64, got {a_dt} and {b_dt}")
    if g_dt not in _FLOATS:
        raise ValueError(f"joint_gram_accumulate: G dtype must be float32 or float64, got {g_dt}")


def joint_gram_accumulate(
    G: jax.Array, A: jax.Array, B: jax.Array, *, normalize: bool, block_rows: int | None = None,
    num_threads: int | None = None,
) -> jax.Array:
    """``G + Zᵀ Z`` with Z = [f(A) | f(B)] packed on the fly (XLA FFI, CPU; G updated in place).

    f is the row L2-normalisation (the cosine kernel's feature map, norms in
    float64) when ``normalize``, else the identity. The compiled core packs
    each chunk of rows into a per-thread scratch and syrks it: the
    normalised rows and their concatenation are never written to memory
    (two passes over the data fewer than normalising and concatenating in
    XLA). Same threading and float64 accumulation as :func:`gram_accumulate`.

    Args:
      G: ``[dA + dB, dA + dB]`` float32|float64 accumulator.
      A: ``[b, dA]``, B: ``[b, dB]`` paired rows, one dtype (float32|float64).
      normalize: row-normalise A's and B's rows (zero rows stay zero).
    """
    _check_joint(G, A, B)
    if not _registered:
        raise RuntimeError(f"joint_gram_accumulate: {unavailable_reason()}")
    br = 0 if block_rows is None else int(block_rows)
    nt = 0 if num_threads is None else int(num_threads)
    if br < 0 or nt < 0:
        raise ValueError(f"joint_gram_accumulate: block_rows and num_threads must be >= 1 (got {block_rows}, {num_threads})")
    G, A, B = jnp.asarray(G), jnp.asarray(A), jnp.asarray(B)

    def on_cpu(g, a, b):
        call = jax.ffi.ffi_call(JOINT_GRAM_TARGET, jax.ShapeDtypeStruct(g.shape, g.dtype),
                                input_output_aliases={0: 0})
        return call(g, a, b, normalize=np.int64(bool(normalize)), block_rows=np.int64(br),
                    num_threads=np.int64(nt))

    def other(g, a, b):
        return joint_gram_accumulate_jax(g, a, b, normalize=normalize)

    return jax.lax.platform_dependent(G, A, B, cpu=on_cpu, default=other)


def joint_gram_accumulate_jax(G: jax.Array, A: jax.Array, B: jax.Array, *, normalize: bool) -> jax.Array:
    """Pure-JAX twin of :func:`joint_gram_accumulate`."""
    _check_joint(G, A, B)

    def f(x):
        if not normalize:
            return x
        n = jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float64 if x.dtype == jnp.float64 else jnp.float32)),
                             axis=1, keepdims=True))
        return jnp.where(n > 0, x / jnp.where(n > 0, n, 1), 0).astype(x.dtype)

    return gram_accumulate_jax(G, jnp.concatenate([f(jnp.asarray(A)), f(jnp.asarray(B))], axis=1))


def gram_accumulate_jax(G: jax.Array, phi: jax.Array) -> jax.Array:
    """Pure-JAX twin of :func:`gram_accumulate`: ``G + (Φᵀ Φ)`` in G's dtype.

    The product is one XLA dot with ``preferred_element_type`` = G's dtype
    (float64 if Φ is float64) and HIGHEST precision (a full GEMM; no float64 sub-block accumulation, so for
    float32 Φ and a float32 G the rounding grows with b).

    Args:
      G: [D, D] float32 or float64.
      phi: [b, D] float32 or float64.

    Returns:
      [D, D] array of G's dtype.
    """
    g_dt, p_dt = _check(G, phi)
    acc_dt = jnp.promote_types(g_dt, p_dt)
    G = jnp.asarray(G)
    phi = jnp.asarray(phi)
    prod = jax.lax.dot_general(
        phi,
        phi,
        dimension_numbers=(((0,), (0,)), ((), ())),
        precision=jax.lax.Precision.HIGHEST,
        preferred_element_type=acc_dt,
    )
    # One rounding to G's dtype (a float32 G with float64 Φ is summed in float64).
    return (G.astype(acc_dt) + prod).astype(g_dt)


def eigvalsh(a: jax.Array) -> jax.Array:
    """Eigenvalues (ascending) of a symmetric matrix, or of a batch of them.

    On CPU this calls LAPACK ``?syevr`` through the compiled core (XLA's CPU
    ``eigh`` always forms the eigenvectors, about twice the work), solving
    the matrices of a batch concurrently; elsewhere, or when the extension is
    missing, ``jnp.linalg.eigvalsh``. Usable inside ``jax.jit``. The upper
    triangle is read (symmetrise first).

    Args:
      a: ``[n, n]`` or ``[b, n, n]``, float32 or float64.

    Returns:
      ``[n]`` or ``[b, n]`` eigenvalues in ascending order, ``a``'s dtype.
    """
    a = jnp.asarray(a)
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"eigvalsh: expected a square [n, n] matrix or [b, n, n], got shape {list(a.shape)}")
    if np.dtype(a.dtype) not in _FLOATS:
        raise ValueError(f"eigvalsh: dtype must be float32 or float64, got {a.dtype}")

    def default(m):
        return jnp.linalg.eigvalsh(m, UPLO="U", symmetrize_input=False)

    if not _registered:
        return default(a)

    def on_cpu(m):
        call = jax.ffi.ffi_call(EIGVALSH_TARGET, jax.ShapeDtypeStruct(m.shape[:-1], m.dtype))
        return call(m)

    return jax.lax.platform_dependent(a, cpu=on_cpu, default=default)



# =========================================================================== Nyström / Gaussian core
#
# Six more CPU targets (csrc/nystrom, csrc/ffi/nystrom_handler.cc), each with
# a pure-JAX twin below it (the reference, and what runs off CPU or without
# the extension):
#
#   nystrom_accumulate      G + Φᵀ Φ,  Φ = k(B, L) W      (whitened, then syrk)
#                           G + Zᵀ Z,  Z = [Φ(B) | Φ(B2)]  (paired: texts, images)
#   (whitening=None)        G + k(B, L)ᵀ k(B, L)          (float64 products; whiten the sum)
#   gaussian_sq_frobenius   Σ_ij k(x_i, x_j)²              (symmetric tiles, no n×n)
#   pivoted_cholesky        greedy pivoted Cholesky of k(x, x) (landmarks)
#
# k(x, y) = exp(−‖x − y‖² / (2σ²)), σ an operand (may be traced).

#: FFI target names (platform "cpu").
NYSTROM_TARGET = "clipcore_nystrom_accumulate"
NYSTROM_PAIRED_TARGET = "clipcore_nystrom_accumulate_paired"
KERNEL_ACC_TARGET = "clipcore_kernel_accumulate"
KERNEL_ACC_PAIRED_TARGET = "clipcore_kernel_accumulate_paired"
SQ_FROBENIUS_TARGET = "clipcore_gaussian_sq_frobenius"
PIVOTED_CHOLESKY_TARGET = "clipcore_pivoted_cholesky"

__all__ += [
    "NYSTROM_TARGET",
    "NYSTROM_PAIRED_TARGET",
    "KERNEL_ACC_TARGET",
    "KERNEL_ACC_PAIRED_TARGET",
    "SQ_FROBENIUS_TARGET",
    "PIVOTED_CHOLESKY_TARGET",
    "nystrom_accumulate",
    "nystrom_accumulate_jax",
    "gaussian_tile_jax",
    "gaussian_sq_frobenius",
    "gaussian_sq_frobenius_jax",
    "PivotedCholesky",
    "pivoted_cholesky",
    "pivoted_cholesky_jax",
    "MIN_PIVOT",
]

#: Default stopping threshold of the pivoted Cholesky on the largest residual
#: diagonal (the kernel diagonal is 1): a landmark must add at least this much
#: new kernel variance.
MIN_PIVOT = 1e-10


def _wide():
    """The widest float JAX may create now (float64 under x64, else float32)."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _shape(a) -> list[int]:
    return list(np.shape(a))


def _desc(a) -> str:
    return f"{np.dtype(a.dtype)} {_shape(a)}"


def _sigma_operand(op: str, sigma) -> jax.Array:
    """σ as a 0-d float array; a concrete σ is checked here (positive, finite)."""
    if isinstance(sigma, (int, float, np.floating, np.integer)) or (
        isinstance(sigma, np.ndarray) and sigma.size == 1
    ):
        v = float(np.asarray(sigma).reshape(()))
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{op}: sigma must be a positive finite number, got {v}")
        return jnp.asarray(v, _wide())
    s = jnp.asarray(sigma)
    if s.size != 1 or np.dtype(s.dtype) not in _FLOATS:
        raise ValueError(f"{op}: sigma must be one float32 or float64 value, got {_desc(s)}")
    return s.reshape(())


def _check_nystrom(op, G, B, landmarks, whitening, B2) -> int:
    """Shapes and dtypes of a Nyström accumulation; returns R (G is [R, R])."""
    if np.dtype(B.dtype) not in _FLOATS:
        raise ValueError(f"{op}: B dtype must be float32 or float64, got {np.dtype(B.dtype)}")
    if B.ndim != 2:
        raise ValueError(f"{op}: B must be rank 2 [b, d], got {_desc(B)}")
    b, d = B.shape
    if B2 is not None and (B2.dtype != B.dtype or tuple(B2.shape) != (b, d)):
        raise ValueError(f"{op}: B2 must have B's dtype and shape ({_desc(B)}), got {_desc(B2)}")
    if landmarks.dtype != B.dtype or landmarks.ndim != 2 or landmarks.shape[1] != d:
        raise ValueError(
            f"{op}: landmarks must be {np.dtype(B.dtype)} [m, d] with d = B.shape[1] = {d}, "
            f"got {_desc(landmarks)}"
        )
    m = landmarks.shape[0]
    if whitening is not None:
        if whitening.dtype != B.dtype or whitening.ndim != 2 or whitening.shape[0] != m:
            raise ValueError(
                f"{op}: whitening must be {np.dtype(B.dtype)} [m, r] with m = landmarks.shape[0] = {m}, "
                f"got {_desc(whitening)}"
            )
        per = whitening.shape[1]
    else:
        per = m
    R = (2 if B2 is not None else 1) * per
    if np.dtype(G.dtype) not in _FLOATS:
        raise ValueError(f"{op}: G dtype must be float32 or float64, got {np.dtype(G.dtype)}")
    if tuple(G.shape) != (R, R):
        what = ("2 * " if B2 is not None else "") + ("r" if whitening is not None else "m")
        raise ValueError(f"{op}: G must be [R, R] with R = {what} = {R}, got {_shape(G)}")
    return R


def _int_attrs(op: str, **kw) -> dict[str, np.int64]:
    attrs = {}
    for name, v in kw.items():
        if v is None:
            continue
        if int(v) < 1:
            raise ValueError(f"{op}: {name} must be >= 1, got {v}")
        attrs[name] = np.int64(v)
    return attrs


def gaussian_tile_jax(a: jax.Array, b: jax.Array, gamma) -> jax.Array:
    """k(a_i, b_j) = exp(−γ sq_ij), sq_ij = ‖a_i‖² + ‖b_j‖² − 2 a_i·b_j, in a's dtype: ``[n, d] × [m, d] → [n, m]``.

    One GEMM for the dot products. As in the compiled core, sq at or below
    the rounding floor of that form, eps(dtype)·(4 + 2√d)·(‖a_i‖² + ‖b_j‖²),
    counts as exactly 0 (the points coincide to working precision), so
    duplicates give exactly 1 at any σ, and γ = ∞ (σ → 0) or γ = 0 (σ → ∞)
    give 0/1 kernels instead of NaN. For float32 rows with x64 enabled, a
    tile whose bandwidth makes that form's rounding matter (γ·floor·(‖a‖² +
    ‖b‖²) > 1e-3, as the compiled core's gate) is formed in float64 instead
    (``lax.cond``: ordinary bandwidths pay nothing), so near-coincident
    pairs keep their true value down to float64's floor.
    """
    d = a.shape[1]

    def tile(x, y, g):
        hi = jax.lax.Precision.HIGHEST
        nsum = jnp.sum(x * x, axis=1)[:, None] + jnp.sum(y * y, axis=1)[None, :]
        sq = nsum - 2.0 * jnp.dot(x, y.T, precision=hi)
        floor = float(np.finfo(x.dtype).eps) * (4.0 + 2.0 * np.sqrt(d))
        return jnp.exp(jnp.where(sq > floor * nsum, -g * sq, jnp.zeros((), x.dtype)))

    if a.dtype == jnp.float32 and jax.config.read("jax_enable_x64") and a.shape[0] and b.shape[0]:
        g64 = jnp.asarray(gamma, jnp.float64)
        floor32 = float(np.finfo(np.float32).eps) * (4.0 + 2.0 * np.sqrt(d))
        top = jnp.max(jnp.sum(a * a, axis=1)).astype(jnp.float64) + jnp.max(jnp.sum(b * b, axis=1)).astype(jnp.float64)
        gate = g64 * floor32 * top > 1e-3
        return jax.lax.cond(gate,
                            lambda: tile(a.astype(jnp.float64), b.astype(jnp.float64), g64).astype(a.dtype),
                            lambda: tile(a, b, jnp.asarray(gamma, a.dtype)))
    return tile(a, b, jnp.asarray(gamma, a.dtype))


def _gamma(sigma, dtype):
    s = jnp.asarray(sigma, dtype)
    return 1.0 / (2.0 * s * s)


def nystrom_accumulate(
    G: jax.Array,
    B: jax.Array,
    landmarks: jax.Array,
    whitening: jax.Array | None,
    sigma,
    *,
    B2: jax.Array | None = None,
    block_rows: int | None = None,
    tile_rows: int | None = None,
    num_threads: int | None = None,
) -> jax.Array:
    """Fused Nyström accumulation through the compiled core (XLA FFI, CPU).

    With ``Φ(B) = k(B, L) W`` (Gaussian kernel, bandwidth σ):

    * ``G + Φ(B)ᵀ Φ(B)``                       (``B2=None``),
    * ``G + Zᵀ Z`` with ``Z = [Φ(B) | Φ(B2)]`` (paired: texts and images of
      the same rows; the four blocks are C_TT, C_TX, C_XT, C_XX · n).

    With ``whitening=None`` Φ(B) = k(B, L) (the unwhitened kernel sum, whose
    products are always float64: whiten it once afterwards).

    Per row chunk: the kernel tile from one GEMM (‖b‖² + ‖l‖² − 2 b·lᵀ) and
    an exp pass, the whitening GEMM, one syrk into a per-thread float64
    accumulator; chunks are spread over XLA's CPU threads. float32 inputs:
    tile and whitening in float32, each chunk's Φᵀ Φ (≤ ``block_rows`` rows,
    default 2048) in float32, summed in float64. Usable in ``jax.jit`` and
    loops; G is updated in place (``input_output_aliases``). Off CPU the
    pure-JAX twin :func:`nystrom_accumulate_jax` runs.

    Args:
      G: ``[R, R]`` float32|float64, R = (2 if B2 else 1) · (r or m).
      B: ``[b, d]`` float32|float64 rows (b may be 0). B2: same shape/dtype.
      landmarks: ``[m, d]`` of B's dtype.
      whitening: ``[m, r]`` of B's dtype, or None.
      sigma: bandwidth (Python float or 0-d array; may be traced).
      block_rows: rows per chunk (= per syrk). tile_rows: rows per kernel tile.
      num_threads: threads for this call.

    Returns:
      ``[R, R]`` of G's dtype.

    Raises:
      ValueError: bad shapes/dtypes/σ (also raised by the target itself, with
        shapes, for non-finite inputs).
      RuntimeError: the compiled extension is not available.
    """
    op = "nystrom_accumulate" if whitening is not None else "kernel_accumulate"
    G, B, landmarks = jnp.asarray(G), jnp.asarray(B), jnp.asarray(landmarks)
    whitening = None if whitening is None else jnp.asarray(whitening)
    B2 = None if B2 is None else jnp.asarray(B2)
    _check_nystrom(op, G, B, landmarks, whitening, B2)
    sig = _sigma_operand(op, sigma)
    attrs = _int_attrs(op, block_rows=block_rows, tile_rows=tile_rows, num_threads=num_threads)
    if not _registered:
        raise RuntimeError(f"{op}: {unavailable_reason()}")
    if whitening is not None:
        target = NYSTROM_PAIRED_TARGET if B2 is not None else NYSTROM_TARGET
    else:
        target = KERNEL_ACC_PAIRED_TARGET if B2 is not None else KERNEL_ACC_TARGET
    operands = [G, B] + ([B2] if B2 is not None else []) + [landmarks]
    operands += ([whitening] if whitening is not None else []) + [sig]
    n_b = 2 if B2 is not None else 1

    def on_cpu(*ops):
        call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(G.shape, G.dtype), input_output_aliases={0: 0})
        return call(*ops, **attrs)

    def default(*ops):
        g, blocks, rest = ops[0], ops[1 : 1 + n_b], ops[1 + n_b :]
        w = rest[1] if whitening is not None else None
        return nystrom_accumulate_jax(g, blocks[0], rest[0], w, rest[-1], B2=blocks[1] if n_b == 2 else None)

    return jax.lax.platform_dependent(*operands, cpu=on_cpu, cuda=on_cpu if _cuda_registered else default,
                                      default=default)


def nystrom_accumulate_jax(
    G: jax.Array,
    B: jax.Array,
    landmarks: jax.Array,
    whitening: jax.Array | None,
    sigma,
    *,
    B2: jax.Array | None = None,
) -> jax.Array:
    """Pure-JAX twin of :func:`nystrom_accumulate` (same arguments, same result).

    Whitened: Φ in B's dtype, ``Φᵀ Φ`` of the block in B's dtype, added to G
    in ``promote(G, B)``. Unwhitened: the kernel tile widened to float64
    (float32 when x64 is off) before the product.
    """
    op = "nystrom_accumulate" if whitening is not None else "kernel_accumulate"
    G, B, landmarks = jnp.asarray(G), jnp.asarray(B), jnp.asarray(landmarks)
    whitening = None if whitening is None else jnp.asarray(whitening)
    B2 = None if B2 is None else jnp.asarray(B2)
    _check_nystrom(op, G, B, landmarks, whitening, B2)
    hi = jax.lax.Precision.HIGHEST
    gamma = _gamma(sigma if not isinstance(sigma, (int, float)) else float(sigma), B.dtype)
    blocks = [B] + ([B2] if B2 is not None else [])
    if whitening is not None:
        feats = [jnp.dot(gaussian_tile_jax(blk, landmarks, gamma), whitening, precision=hi) for blk in blocks]
        z = feats[0] if len(feats) == 1 else jnp.concatenate(feats, axis=1)
        prod = jax.lax.dot_general(z, z, (((0,), (0,)), ((), ())), precision=hi, preferred_element_type=z.dtype)
    else:
        wide = jnp.promote_types(B.dtype, _wide())
        feats = [gaussian_tile_jax(blk, landmarks, gamma).astype(wide) for blk in blocks]
        z = feats[0] if len(feats) == 1 else jnp.concatenate(feats, axis=1)
        prod = jax.lax.dot_general(z, z, (((0,), (0,)), ((), ())), precision=hi, preferred_element_type=wide)
    acc = jnp.promote_types(G.dtype, prod.dtype)
    return (G.astype(acc) + prod.astype(acc)).astype(G.dtype)


def _check_x(op: str, x) -> None:
    if np.dtype(x.dtype) not in _FLOATS:
        raise ValueError(f"{op}: x dtype must be float32 or float64, got {np.dtype(x.dtype)}")
    if x.ndim != 2:
        raise ValueError(f"{op}: x must be rank 2 [n, d], got {_desc(x)}")


def gaussian_sq_frobenius(
    x: jax.Array, sigma, *, tile_rows: int | None = None, num_threads: int | None = None
) -> jax.Array:
    """``‖K‖_F² = Σ_ij k(x_i, x_j)²`` of the Gaussian kernel, streamed (no n×n matrix).

    The compiled core visits the tile pairs I ≤ J once (one GEMM + one exp
    pass each, off-diagonal tiles doubled), sums in float64 and is threaded
    over row tiles; the diagonal k(x_i, x_i) = 1 is exact. RKE = n² / ‖K‖_F².
    On CUDA the same target runs when the extension was built with
    ``CLIPCORE_ENABLE_CUDA`` (csrc/cuda/frobenius_cuda.cu: one cuBLAS GEMM and
    one fused k² + float64 sum kernel per tile pair); elsewhere off CPU the
    twin :func:`gaussian_sq_frobenius_jax` runs.

    Args:
      x: ``[n, d]`` float32|float64. sigma: bandwidth (float or 0-d array).
      tile_rows: tile edge (default 512 on CPU, 4096 on CUDA). num_threads: threads for this call.

    Returns:
      0-d float64 (float32 when x64 is off).
    """
    op = "gaussian_sq_frobenius"
    x = jnp.asarray(x)
    _check_x(op, x)
    sig = _sigma_operand(op, sigma)
    attrs = _int_attrs(op, tile_rows=tile_rows, num_threads=num_threads)
    if not _registered:
        raise RuntimeError(f"{op}: {unavailable_reason()}")
    out = jax.ShapeDtypeStruct((), _wide())

    def on_cpu(a, s):
        return jax.ffi.ffi_call(SQ_FROBENIUS_TARGET, out)(a, s, **attrs)

    def default(a, s):
        return gaussian_sq_frobenius_jax(a, s, tile_rows=tile_rows)

    return jax.lax.platform_dependent(x, sig, cpu=on_cpu, cuda=on_cpu if _cuda_registered else default,
                                      default=default)


def gaussian_sq_frobenius_jax(x: jax.Array, sigma, *, y: jax.Array | None = None,
                              tile_rows: int | None = None) -> jax.Array:
    """Pure-JAX twin of :func:`gaussian_sq_frobenius`: a ``lax.fori_loop`` over tile pairs I ≤ J
    (or, with ``y [p, d]``, over all pairs of x's and y's tiles: Σ_ij k(x_i, y_j)², the cross term of
    :func:`gaussian_sq_frobenius_host`).

    x (and y) are padded to a whole number of tiles (the padding rows are
    masked out); each pair's k² tile comes from one dot and one exp in x's
    dtype and is summed in float64 (float32 when x64 is off).
    """
    x = jnp.asarray(x)
    _check_x("gaussian_sq_frobenius", x)
    cross = y is not None
    if cross:
        y = jnp.asarray(y)
        _check_x("gaussian_sq_frobenius", y)
        if y.shape[1] != x.shape[1] or y.dtype != x.dtype:
            raise ValueError(f"gaussian_sq_frobenius: y must be [p, {x.shape[1]}] {x.dtype}, got "
                             f"{list(y.shape)} {y.dtype}")
    n, d = x.shape
    p = y.shape[0] if cross else n
    wide = _wide()
    if n == 0 or p == 0:
        return jnp.zeros((), wide)
    t = int(max(1, min(tile_rows or 512, max(n, p))))
    nbx, nby = -(-n // t), -(-p // t)
    xp = jnp.pad(x, ((0, nbx * t - n), (0, 0)))
    yp = jnp.pad(y, ((0, nby * t - p), (0, 0))) if cross else xp
    wx = (jnp.arange(nbx * t) < n).astype(wide)
    wy = (jnp.arange(nby * t) < p).astype(wide) if cross else wx
    ii, jj = (np.divmod(np.arange(nbx * nby), nby) if cross else np.triu_indices(nbx))
    n_pairs = len(ii)
    ii, jj = jnp.asarray(ii, jnp.int32), jnp.asarray(jj, jnp.int32)
    gamma2 = 2.0 * _gamma(sigma, x.dtype)
    eye = jnp.eye(t, dtype=bool)

    def body(q, acc):
        i, j = ii[q], jj[q]
        xi = jax.lax.dynamic_slice_in_dim(xp, i * t, t, axis=0)
        yj = jax.lax.dynamic_slice_in_dim(yp, j * t, t, axis=0)
        k2 = gaussian_tile_jax(xi, yj, gamma2)
        if not cross:  # a point with itself: exactly 1
            k2 = jnp.where(eye & (i == j), jnp.ones((), k2.dtype), k2)
        wi = jax.lax.dynamic_slice_in_dim(wx, i * t, t)
        wj = jax.lax.dynamic_slice_in_dim(wy, j * t, t)
        s = wi @ k2.astype(wide) @ wj
        return acc + (s if cross else jnp.where(i == j, s, 2.0 * s))

    return jax.lax.fori_loop(0, n_pairs, body, jnp.zeros((), wide))


def gaussian_sq_frobenius_host(x: np.ndarray, sigma: float, *, y: np.ndarray | None = None,
                               tile_rows: int | None = None, num_threads: int | None = None) -> float:
    """The compiled ‖K‖_F² on host rows, outside XLA: Σ_ij k(x_i, x_j)², or with ``y [p, d]`` the cross
    term Σ_ij k(x_i, y_j)² (float64 sums, GIL released, the process's threads). ``x`` and ``y`` are made
    C-contiguous float32|float64 of one dtype (y takes x's)."""
    if not _registered:
        raise RuntimeError(f"gaussian_sq_frobenius: {unavailable_reason()}")
    x = np.ascontiguousarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"gaussian_sq_frobenius: x dtype must be float32 or float64, got {x.dtype}")
    if y is not None:
        y = np.ascontiguousarray(y, dtype=x.dtype)
    return float(_ext.gaussian_sq_frobenius_host(x, y, float(sigma), int(num_threads or 0), int(tile_rows or 0)))


class PivotedCholesky(NamedTuple):
    """Result of :func:`pivoted_cholesky` (arrays of the full size m; see count).

    Attributes:
      pivots: ``[m]`` pivot rows in the order chosen, −1 after ``count``.
      count: 0-d number of pivots taken (≤ min(m, n)).
      residual_trace: ``[m]`` Σ_i residual diagonal after each step (tr K = n
        before the first), NaN after ``count``.
      pivot_factor: ``[m, m]`` L[pivots, :], the lower-triangular Cholesky
        factor of k(x_P, x_P); zero outside the leading count × count block.
      factor: ``[n, m]`` L (k(x, x) ≈ L Lᵀ), zero after column ``count``;
        ``[0, m]`` unless ``return_factor``.
    """

    pivots: jax.Array
    count: jax.Array
    residual_trace: jax.Array
    pivot_factor: jax.Array
    factor: jax.Array


def _pc_out(n: int, m: int, return_factor: bool):
    wide = _wide()
    idt = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    return PivotedCholesky(
        jax.ShapeDtypeStruct((m,), idt),
        jax.ShapeDtypeStruct((), idt),
        jax.ShapeDtypeStruct((m,), wide),
        jax.ShapeDtypeStruct((m, m), wide),
        jax.ShapeDtypeStruct((n if return_factor else 0, m), wide),
    )


def _check_pc(op, x, m, trace_tol, min_pivot):
    _check_x(op, x)
    if int(m) < 0:
        raise ValueError(f"{op}: m must be >= 0, got {m}")
    if not np.isfinite(float(min_pivot)) or float(min_pivot) < 0:
        raise ValueError(f"{op}: min_pivot must be finite and >= 0, got {min_pivot}")
    if np.isnan(float(trace_tol)):
        raise ValueError(f"{op}: trace_tol must not be NaN")


def pivoted_cholesky(
    x: jax.Array,
    sigma,
    m: int,
    *,
    trace_tol: float = 0.0,
    min_pivot: float = MIN_PIVOT,
    return_factor: bool = False,
    panel: int | None = None,
    candidates: int | None = None,
    block_rows: int | None = None,
    num_threads: int | None = None,
) -> PivotedCholesky:
    """Greedy pivoted Cholesky of the Gaussian kernel matrix k(x, x), never formed.

    Sequential definition: residual diagonal r = 1, trace t = n; at each step
    stop if m pivots were taken, t ≤ ``trace_tol`` or max r ≤ ``min_pivot``;
    else p = argmax r (lowest index among ties), L[:, k] = (K[:, p] −
    L[:, :k] L[p, :k]ᵀ)/√r_p, r −= L[:, k]², r_p = 0. The compiled core gets
    the same pivots with BLAS-3 panels (candidate rows of largest residual,
    then one GEMM + exp + GEMM + triangular solve over all rows per panel,
    threaded): O(n·m·d + n·m²) flops, O(n·m) memory (see
    csrc/nystrom/pivoted_cholesky.h), float64 arithmetic. On CUDA the same
    target runs when the extension was built with ``CLIPCORE_ENABLE_CUDA``
    (csrc/cuda/pivoted_cholesky_cuda.cu: the sequential definition, one step
    after another on the device, the same pivots); elsewhere off CPU the twin
    :func:`pivoted_cholesky_jax` runs.

    Args:
      x: ``[n, d]`` float32|float64. sigma: bandwidth. m: most pivots.
      trace_tol: absolute residual-trace threshold (``tol · n`` for a
        relative tolerance).
      min_pivot: stop when no residual exceeds this.
      return_factor: also return the ``[n, m]`` factor.
      panel, candidates, block_rows, num_threads: tuning (defaults 128,
        max(4·panel, 512), 1024, all CPUs); the result does not depend on them.

    Returns:
      :class:`PivotedCholesky` (int64/float64 under x64, else int32/float32).
    """
    op = "pivoted_cholesky"
    x = jnp.asarray(x)
    _check_pc(op, x, m, trace_tol, min_pivot)
    sig = _sigma_operand(op, sigma)
    attrs = _int_attrs(op, panel=panel, candidates=candidates, block_rows=block_rows, num_threads=num_threads)
    attrs["trace_tol"] = np.float64(trace_tol)
    attrs["min_pivot"] = np.float64(min_pivot)
    if not _registered:
        raise RuntimeError(f"{op}: {unavailable_reason()}")
    out = _pc_out(x.shape[0], int(m), bool(return_factor))

    def on_cpu(a, s):
        return PivotedCholesky(*jax.ffi.ffi_call(PIVOTED_CHOLESKY_TARGET, tuple(out))(a, s, **attrs))

    def default(a, s):
        return pivoted_cholesky_jax(
            a, s, int(m), trace_tol=trace_tol, min_pivot=min_pivot, return_factor=return_factor
        )

    return jax.lax.platform_dependent(x, sig, cpu=on_cpu, cuda=on_cpu if _cuda_registered else default,
                                      default=default)


def pivoted_cholesky_jax(
    x: jax.Array,
    sigma,
    m: int,
    *,
    trace_tol: float = 0.0,
    min_pivot: float = MIN_PIVOT,
    return_factor: bool = False,
) -> PivotedCholesky:
    """Pure-JAX twin of :func:`pivoted_cholesky`: the sequential definition in a ``lax.fori_loop``.

    One step per iteration (a kernel column from x·x_p, one matrix-vector
    product with the [n, m] factor); float64 (float32 when x64 is off).
    """
    op = "pivoted_cholesky"
    x = jnp.asarray(x)
    _check_pc(op, x, m, trace_tol, min_pivot)
    m = int(m)
    out = _pc_out(x.shape[0], m, bool(return_factor))
    wide = out.residual_trace.dtype
    idt = out.pivots.dtype
    n = x.shape[0]
    me = min(m, n)
    xw = x.astype(wide)
    gamma = _gamma(sigma, wide)
    norms = jnp.sum(xw * xw, axis=1)
    floor = float(np.finfo(wide).eps) * (4.0 + 2.0 * np.sqrt(x.shape[1]))
    hi = jax.lax.Precision.HIGHEST
    nan = jnp.asarray(np.nan, wide)

    L0 = jnp.zeros((n, m), wide)
    init = (
        L0,
        jnp.ones((n,), wide),  # residual diagonal
        jnp.zeros((n,), bool),  # pivoted
        jnp.full((m,), -1, idt),
        jnp.full((m,), nan, wide),
        jnp.zeros((), idt),
        jnp.asarray(False),
        jnp.asarray(float(n), wide),
    )

    def body(k, st):
        L, r, piv, pivots, rtrace, count, done, trace = st
        p = jnp.argmax(r)
        dp = r[p]
        stop = done | (trace <= trace_tol) | ~(dp > min_pivot)
        nsum = norms + norms[p]
        sq = nsum - 2.0 * jnp.dot(xw, xw[p], precision=hi)
        kcol = jnp.exp(jnp.where(sq > floor * nsum, -gamma * sq, jnp.zeros((), wide)))
        pv = jnp.sqrt(jnp.where(stop, 1.0, dp))
        col = (kcol - jnp.dot(L, L[p], precision=hi)) / pv
        col = jnp.where(piv, 0.0, col).at[p].set(pv)
        r_new = jnp.maximum(r - col * col, 0.0).at[p].set(0.0)
        t_new = jnp.sum(r_new)
        upd = (
            L.at[:, k].set(col),
            r_new,
            piv.at[p].set(True),
            pivots.at[k].set(p.astype(idt)),
            rtrace.at[k].set(t_new),
            count + 1,
            done,
            t_new,
        )
        keep = (L, r, piv, pivots, rtrace, count, jnp.asarray(True), trace)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), keep, upd)

    L, _, _, pivots, rtrace, count, _, _ = jax.lax.fori_loop(0, me, body, init)
    safe = jnp.where(pivots >= 0, pivots, 0)
    rows = jnp.arange(m) < count
    pf = jnp.where(rows[:, None], L[safe], 0.0)
    factor = L if return_factor else jnp.zeros((0, m), wide)
    return PivotedCholesky(pivots, count, rtrace, pf, factor)
