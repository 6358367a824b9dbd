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
    "check_pair",
    "check_sigma",
    "check_positive_int",
    "check_finite_rows",
]


def _first_bad_row(mask_rows: Any) -> int:
    return int(np.flatnonzero(np.asarray(mask_rows))[0])


def as_embeddings(x: Any, name: str, *, allow_empty: bool = False) -> jax.Array:
    """Return ``x`` as a 2-D floating ``jax.Array`` or raise a ``ValueError``.

    Args:
      x: array-like ``[n, d]``.
      name: the argument's name, used in error messages.
      allow_empty: accept ``n == 0``.
    """
    if x is None:
        raise ValueError(f"{name}: expected an array of shape [n, d], got None")
    if not isinstance(x, (jax.Array, np.ndarray)):
        try:
            x = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name}: cannot be converted to an array ({exc})") from exc
    dtype = np.dtype(x.dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(
            f"{name}: expected a floating-point array (float32 or float64), got dtype {dtype}"
        )
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [n, d], got shape {tuple(x.shape)}")
    n, d = x.shape
    if d == 0:
        raise ValueError(f"{name}: embeddings have zero dimensions (shape {tuple(x.shape)})")
    if n == 0 and not allow_empty:
        raise ValueError(f"{name}: empty set of embeddings (shape {tuple(x.shape)})")
    check_finite_rows(x, name)
    return jnp.asarray(x)


def check_finite_rows(x: Any, name: str, *, row_offset: int = 0, where: str = "") -> None:
    """Raise if any entry of ``x`` is NaN or ±Inf, naming the first bad row."""
    finite_rows = jnp.all(jnp.isfinite(x), axis=1)
    if not bool(jnp.all(finite_rows)):
        row = _first_bad_row(~np.asarray(finite_rows)) + row_offset
        bad = np.asarray(x[row - row_offset])
        kind = "NaN" if np.isnan(bad).any() else "Inf"
        loc = f" ({where})" if where else ""
        raise ValueError(f"{name}: contains {kind} at row {row}{loc}")


def check_nonzero_rows(x: jax.Array, name: str) -> None:
    """The cosine kernel divides by row norms: a zero row has no direction."""
    norms = jnp.linalg.norm(x, axis=1)
    zero = np.asarray(norms == 0)
    if zero.any():
        raise ValueError(
            f"{name}: row {int(np.flatnonzero(zero)[0])} has zero norm; the cosine kernel "
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


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
