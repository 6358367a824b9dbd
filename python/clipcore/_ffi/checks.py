"""Argument checks of the compiled core's entry points: shapes, dtypes, attributes and the σ operand.

Each check raises a ``ValueError`` whose message starts with the operation's
name (``"gram_accumulate: ..."``), the same wording the compiled handlers use
for what only they can see (non-finite values). They run on shapes and
dtypes only (usable while tracing), except :func:`sigma_operand`, which
checks a concrete σ's value.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_sigma

__all__ = [
    "FLOATS",
    "STRATEGIES",
    "wide",
    "desc",
    "check_gram",
    "gram_attrs",
    "check_joint",
    "joint_attrs",
    "check_square",
    "sigma_operand",
    "check_nystrom",
    "int_attrs",
    "check_x",
    "check_pc",
    "traced",
]

#: The dtypes of the compiled core.
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

#: Gram accumulation strategies and their attribute values.
STRATEGIES = {"rows": 0, "blas": 1}


def wide() -> Any:
    """The widest float JAX may create now (float64 under x64, else float32)."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _shape(a) -> list[int]:
    return list(np.shape(a))


def desc(a) -> str:
    """``"float32 [5, 4]"``: an operand's dtype and shape, for messages."""
    return f"{np.dtype(a.dtype)} {_shape(a)}"


def check_gram(G, phi) -> tuple[np.dtype, np.dtype]:
    """Shapes and dtypes of ``G + Φᵀ Φ`` (G ``[D, D]``, Φ ``[b, D]``, float32|float64); returns their dtypes."""
    g_shape, p_shape = tuple(np.shape(G)), tuple(np.shape(phi))
    g_dt, p_dt = np.dtype(G.dtype), np.dtype(phi.dtype)
    if len(p_shape) != 2:
        raise ValueError(f"gram_accumulate: phi must be rank 2 [b, D], got shape {list(p_shape)}")
    d = p_shape[1]
    if g_shape != (d, d):
        raise ValueError(
            f"gram_accumulate: G must be [D, D] with D = phi.shape[1] = {d}, got {list(g_shape)}"
        )
    if p_dt not in FLOATS:
        raise ValueError(f"gram_accumulate: phi dtype must be float32 or float64, got {p_dt}")
    if g_dt not in FLOATS:
        raise ValueError(f"gram_accumulate: G dtype must be float32 or float64, got {g_dt}")
    return g_dt, p_dt


def gram_attrs(block_rows, num_threads, strategy) -> dict[str, np.int64]:
    """The Gram target's attributes (only those given), checked."""
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
        if strategy not in STRATEGIES:
            raise ValueError(
                f"gram_accumulate: strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}"
            )
        attrs["strategy"] = np.int64(STRATEGIES[strategy])
    return attrs


def check_joint(G, A, B) -> None:
    """Shapes and dtypes of ``G + [f(A) | f(B)]ᵀ [f(A) | f(B)]``: A ``[b, dA]``, B ``[b, dB]`` of one
    float dtype, G ``[dA + dB, dA + dB]``."""
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
    if a_dt not in FLOATS or b_dt != a_dt:
        raise ValueError(f"joint_gram_accumulate: A and B must share float32 or float64, got {a_dt} and {b_dt}")
    if g_dt not in FLOATS:
        raise ValueError(f"joint_gram_accumulate: G dtype must be float32 or float64, got {g_dt}")


def joint_attrs(block_rows, num_threads) -> tuple[int, int]:
    """The joint Gram target's ``block_rows`` and ``num_threads`` (0: the default), checked."""
    br = 0 if block_rows is None else int(block_rows)
    nt = 0 if num_threads is None else int(num_threads)
    if br < 0 or nt < 0:
        raise ValueError(f"joint_gram_accumulate: block_rows and num_threads must be >= 1 (got {block_rows}, {num_threads})")
    return br, nt


def check_square(a) -> None:
    """``eigvalsh``'s operand: ``[n, n]`` or ``[b, n, n]``, float32|float64."""
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"eigvalsh: expected a square [n, n] matrix or [b, n, n], got shape {list(a.shape)}")
    if np.dtype(a.dtype) not in FLOATS:
        raise ValueError(f"eigvalsh: dtype must be float32 or float64, got {a.dtype}")


def _shown(sigma) -> Any:
    try:
        return float(np.asarray(sigma, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        return repr(sigma)


def sigma_operand(op: str, sigma) -> jax.Array:
    """σ as a 0-d float operand of a target.

    A concrete σ (a Python or NumPy number, a one-element NumPy array) is
    checked by the one σ check (:func:`clipcore._validate.check_sigma`: finite,
    positive) and becomes a 0-d array of the widest float; a JAX array (which
    may be traced) must hold one float32|float64 value and keeps its dtype
    (the target checks its value).
    """
    if isinstance(sigma, (int, float, np.floating, np.integer)) or (
        isinstance(sigma, np.ndarray) and sigma.size == 1
    ):
        try:
            v = check_sigma(sigma, f"{op}: sigma", required=True)
        except ValueError:
            raise ValueError(f"{op}: sigma must be a positive finite number, got {_shown(sigma)}") from None
        return jnp.asarray(v, wide())
    s = jnp.asarray(sigma)
    if s.size != 1 or np.dtype(s.dtype) not in FLOATS:
        raise ValueError(f"{op}: sigma must be one float32 or float64 value, got {desc(s)}")
    return s.reshape(())


def check_nystrom(op, G, B, landmarks, whitening, B2) -> int:
    """Shapes and dtypes of a Nyström accumulation; returns R (G is [R, R])."""
    if np.dtype(B.dtype) not in FLOATS:
        raise ValueError(f"{op}: B dtype must be float32 or float64, got {np.dtype(B.dtype)}")
    if B.ndim != 2:
        raise ValueError(f"{op}: B must be rank 2 [b, d], got {desc(B)}")
    b, d = B.shape
    if B2 is not None and (B2.dtype != B.dtype or tuple(B2.shape) != (b, d)):
        raise ValueError(f"{op}: B2 must have B's dtype and shape ({desc(B)}), got {desc(B2)}")
    if landmarks.dtype != B.dtype or landmarks.ndim != 2 or landmarks.shape[1] != d:
        raise ValueError(
            f"{op}: landmarks must be {np.dtype(B.dtype)} [m, d] with d = B.shape[1] = {d}, "
            f"got {desc(landmarks)}"
        )
    m = landmarks.shape[0]
    if whitening is not None:
        if whitening.dtype != B.dtype or whitening.ndim != 2 or whitening.shape[0] != m:
            raise ValueError(
                f"{op}: whitening must be {np.dtype(B.dtype)} [m, r] with m = landmarks.shape[0] = {m}, "
                f"got {desc(whitening)}"
            )
        per = whitening.shape[1]
    else:
        per = m
    R = (2 if B2 is not None else 1) * per
    if np.dtype(G.dtype) not in FLOATS:
        raise ValueError(f"{op}: G dtype must be float32 or float64, got {np.dtype(G.dtype)}")
    if tuple(G.shape) != (R, R):
        what = ("2 * " if B2 is not None else "") + ("r" if whitening is not None else "m")
        raise ValueError(f"{op}: G must be [R, R] with R = {what} = {R}, got {_shape(G)}")
    return R


def int_attrs(op: str, **kw) -> dict[str, np.int64]:
    """Optional integer attributes (tile and block sizes, threads): those given, each ``>= 1``."""
    attrs = {}
    for name, v in kw.items():
        if v is None:
            continue
        if int(v) < 1:
            raise ValueError(f"{op}: {name} must be >= 1, got {v}")
        attrs[name] = np.int64(v)
    return attrs


def check_x(op: str, x) -> None:
    """Rows ``[n, d]`` float32|float64."""
    if np.dtype(x.dtype) not in FLOATS:
        raise ValueError(f"{op}: x dtype must be float32 or float64, got {np.dtype(x.dtype)}")
    if x.ndim != 2:
        raise ValueError(f"{op}: x must be rank 2 [n, d], got {desc(x)}")


def check_pc(op, x, m, trace_tol, min_pivot) -> None:
    """The pivoted Cholesky's rows and stopping rule: m ≥ 0, min_pivot finite ≥ 0, trace_tol not NaN."""
    check_x(op, x)
    if int(m) < 0:
        raise ValueError(f"{op}: m must be >= 0, got {m}")
    if not np.isfinite(float(min_pivot)) or float(min_pivot) < 0:
        raise ValueError(f"{op}: min_pivot must be finite and >= 0, got {min_pivot}")
    if np.isnan(float(trace_tol)):
        raise ValueError(f"{op}: trace_tol must not be NaN")


def traced(*trees) -> bool:
    """True when a leaf of ``trees`` is a JAX tracer (inside ``jit``, ``grad``, ``vmap``, ...).

    The entry points call their FFI dispatch through its ``jax.custom_jvp``
    wrapper only then: on concrete arrays nothing can be differentiated, and
    the wrapper's eager dispatch (~0.1-0.2 ms a call) is skipped.
    """
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))
