"""Input validation shared by every public entry point.

Errors are ``ValueError`` whose message starts with the argument's name, so a
user reading a traceback knows which input to fix.  Checks run on the
concrete arrays (outside ``jit``); the math modules below assume valid input.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "as_embeddings",
    "is_floating",
    "widen_half",
    "check_pair",
    "check_sigma",
    "check_positive_int",
    "check_finite_rows",
]


def is_floating(dtype: Any) -> bool:
    """float16, bfloat16, float32 or float64 (NumPy's own test misses bfloat16)."""
    return bool(jnp.issubdtype(dtype, jnp.floating))


def widen_half(x: Any) -> Any:
    """Half-precision embeddings (float16, bfloat16: how CLIP outputs are often
    saved) as float32, which holds every such value exactly; others unchanged."""
    return x.astype(np.float32) if is_floating(x.dtype) and np.dtype(x.dtype).itemsize < 4 else x


def _first_bad_row(mask_rows: Any) -> int:
    return int(np.flatnonzero(np.asarray(mask_rows))[0])


def _row_sq_norms(x: Any) -> np.ndarray:
    """Σ_j x_ij² per row, in one pass (NumPy for host arrays, one jit for jax)."""
    if isinstance(x, jax.Array):
        return np.asarray(_row_sq_jit(x))
    return np.einsum("ij,ij->i", x, x)


@jax.jit
def _row_sq_jit(x):
    return jnp.sum(x * x, axis=1)


def as_embeddings(x: Any, name: str, *, nonzero_rows: bool = False) -> jax.Array:
    """Return ``x`` as a 2-D floating ``jax.Array`` or raise a ``ValueError``.

    One pass over the data: the per-row sums of squares are non-finite
    exactly when a row holds NaN/Inf (or overflows, which is then told apart
    by a second look at that row only) and zero for a zero row.

    Args:
      x: array-like ``[n, d]``.
      name: the argument's name, used in error messages.
      nonzero_rows: also reject rows of zero norm (the cosine kernel).
    """
    if x is None:
        raise ValueError(f"{name}: expected an array of shape [n, d], got None")
    if not isinstance(x, (jax.Array, np.ndarray)):
        try:
            x = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name}: cannot be converted to an array ({exc})") from exc
    dtype = np.dtype(x.dtype)
    if not is_floating(dtype):
        raise ValueError(
            f"{name}: expected a floating-point array (float32 or float64), got dtype {dtype}"
        )
    x = widen_half(x)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [n, d], got shape {tuple(x.shape)}")
    n, d = x.shape
    if d == 0:
        raise ValueError(f"{name}: embeddings have zero dimensions (shape {tuple(x.shape)})")
    if n == 0:
        raise ValueError(f"{name}: empty set of embeddings (shape {tuple(x.shape)})")
    sq = _row_sq_norms(x)
    suspicious = np.flatnonzero(~np.isfinite(sq))
    for row in suspicious:  # NaN/Inf, or a finite row whose square sum overflowed
        values = np.asarray(x[row])
        if not np.isfinite(values).all():
            kind = "NaN" if np.isnan(values).any() else "Inf"
            raise ValueError(f"{name}: contains {kind} at row {int(row)}")
    if nonzero_rows:
        zero = np.flatnonzero(sq == 0)
        if zero.size:
            raise ValueError(
                f"{name}: row {int(zero[0])} has zero norm; the cosine kernel "
                "needs a direction for every embedding"
            )
    # device_put, not jnp.asarray: a 64-byte-aligned host array is then used
    # in place on the CPU device instead of being copied.
    return x if isinstance(x, jax.Array) else jax.device_put(np.asarray(x))


def check_finite_rows(x: Any, name: str, *, row_offset: int = 0, where: str = "") -> None:
    """Raise if any entry of ``x`` is NaN or ±Inf, naming the first bad row."""
    finite_rows = np.isfinite(_row_sq_norms(x))
    if not finite_rows.all():
        for row in np.flatnonzero(~finite_rows):
            bad = np.asarray(x[row])
            if not np.isfinite(bad).all():
                kind = "NaN" if np.isnan(bad).any() else "Inf"
                loc = f" ({where})" if where else ""
                raise ValueError(f"{name}: contains {kind} at row {int(row) + row_offset}{loc}")


def check_nonzero_rows(x: jax.Array, name: str) -> None:
    """The cosine kernel divides by row norms: a zero row has no direction."""
    zero = np.flatnonzero(_row_sq_norms(x) == 0)
    if zero.size:
        raise ValueError(
            f"{name}: row {int(zero[0])} has zero norm; the cosine kernel "
            "needs a direction for every embedding"
        )


def check_nonzero_columns(x: jax.Array, name: str) -> None:
    """The clip-dissection cosine convention divides by column norms."""
    norms = jnp.linalg.norm(x, axis=0)
    zero = np.asarray(norms == 0)
    if zero.any():
        raise ValueError(
            f"{name}: column {int(np.flatnonzero(zero)[0])} has zero norm; the "
            "clip-dissection convention normalises columns"
        )


def check_pair(images: jax.Array, texts: jax.Array, *, same_dim: bool) -> None:
    """Images and texts are paired by row; a shared feature map needs equal d."""
    if images.shape[0] != texts.shape[0]:
        raise ValueError(
            f"texts: {texts.shape[0]} rows but images has {images.shape[0]}; "
            "row i of texts must be the prompt of row i of images"
        )
    if same_dim and images.shape[1] != texts.shape[1]:
        raise ValueError(
            f"texts: dimension {texts.shape[1]} differs from images' {images.shape[1]}; the "
            "Gaussian kernel shares one feature map (one omega) between texts and images"
        )


def check_sigma(sigma: Any, name: str = "sigma") -> float | None:
    if sigma is None:
        return None
    if isinstance(sigma, bool) or not isinstance(sigma, (numbers.Real, np.floating, np.integer)):
        try:
            sigma = float(np.asarray(sigma))
        except Exception:
            raise ValueError(f"{name}: expected a positive number, got {sigma!r}") from None
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"{name}: the Gaussian bandwidth must be a finite positive number, got {sigma}")
    return sigma


def check_positive_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if isinstance(value, (numbers.Integral, np.integer)):
        ivalue = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        raise ValueError(
            f"{name}: expected a positive integer, got the float {value!r} (pass int({value!r}))"
        )
    else:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if ivalue <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {ivalue}")
    return ivalue


def check_number(value: Any, name: str, *, positive: bool, default: float | None = None) -> float | None:
    """A finite real ``> 0`` (``positive``) or ``≥ 0``; ``None`` gives ``default``."""
    if value is None:
        return default
    bound = "> 0" if positive else "≥ 0"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}") from None
    if not np.isfinite(v) or (v <= 0 if positive else v < 0):
        raise ValueError(f"{name}: expected a finite number {bound}, got {v}")
    return v


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
