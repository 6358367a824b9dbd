"""Input validation shared by every public entry point.

Errors are ``ValueError`` whose message starts with the argument's name, so a
user reading a traceback knows which input to fix.  Checks run on the
concrete arrays (outside ``jit``); the math modules below assume valid input.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "as_embeddings",
    "is_floating",
    "widen_half",
    "check_pair",
    "warn_dimension_mismatch",
    "DimensionMismatchWarning",
    "refuse_tracer",
    "from_torch",
    "check_sigma",
    "check_positive_int",
    "check_finite_rows",
    "check_rows",
    "host_rows",
    "check_flag",
    "check_number",
    "check_choice",
]


def is_floating(dtype: Any) -> bool:
    """float16, bfloat16, float32 or float64 (NumPy's own test misses bfloat16)."""
    return bool(jnp.issubdtype(dtype, jnp.floating))


def widen_half(x: Any) -> Any:
    """Half-precision embeddings (float16, bfloat16: how CLIP outputs are often
    saved) as float32, which holds every such value exactly; others unchanged."""
    return x.astype(np.float32) if is_floating(x.dtype) and np.dtype(x.dtype).itemsize < 4 else x


def _row_sq_norms(x: Any) -> np.ndarray:
    """Σ_j x_ij² per row, in one pass (NumPy for host arrays, one jit for jax)."""
    if isinstance(x, jax.Array):
        return np.asarray(_row_sq_jit(x))
    return np.einsum("ij,ij->i", x, x)


@jax.jit
def _row_sq_jit(x):
    return jnp.sum(x * x, axis=1)


def check_rows(x: Any, name: str, *, nonzero: bool = False, row_offset: int = 0,
               locate: Callable[[int], str] | None = None, sq: np.ndarray | None = None) -> None:
    """The one row checker: raise a ``ValueError`` naming the first row holding NaN / Inf (and, with
    ``nonzero``, the first zero row), in one pass over the data.

    The per-row sums of squares are non-finite exactly when a row holds NaN/Inf
    (or overflows, told apart by a second look at that row only) and zero for a
    zero row.

    Args:
      x: ``[b, d]`` host or device rows.
      name: the argument's name, first word of the message.
      nonzero: also refuse rows of zero norm (the cosine kernel needs a direction).
      row_offset: global index of ``x``'s first row (blocks of a stream).
      locate: ``locate(global_row)`` → where that row lives (e.g. ``"shard a.npy, row 7"``), added in
        parentheses.
      sq: the row sums of squares if the caller has them.
    """
    if sq is None:
        sq = _row_sq_norms(x)

    def where(row: int) -> str:
        g = int(row) + row_offset
        return f"row {g}" + (f" ({locate(g)})" if locate is not None else "")

    for row in np.flatnonzero(~np.isfinite(sq)):  # NaN/Inf, or a finite row whose square sum overflowed
        values = np.asarray(x[row])
        if not np.isfinite(values).all():
            kind = "NaN" if np.isnan(values).any() else "Inf"
            raise ValueError(f"{name}: contains {kind} at {where(row)}")
    if nonzero:
        zero = np.flatnonzero(sq == 0)
        if zero.size:
            raise ValueError(f"{name}: {where(zero[0])} has zero norm; the cosine kernel needs a direction "
                             "for every embedding")


def as_embeddings(x: Any, name: str, *, nonzero_rows: bool = False) -> jax.Array:
    """Return ``x`` as a 2-D floating ``jax.Array`` or raise a ``ValueError`` naming ``name``.

    Half precision is widened to float32 (exact); rows are checked by :func:`check_rows`.

    Args:
      x: array-like ``[n, d]``.
      name: the argument's name, used in error messages.
      nonzero_rows: also reject rows of zero norm (the cosine kernel).
    """
    x = host_or_device_2d(x, name)
    check_rows(x, name, nonzero=nonzero_rows)
    # device_put, not jnp.asarray: a 64-byte-aligned host array is then used
    # in place on the CPU device instead of being copied.
    return x if isinstance(x, jax.Array) else jax.device_put(np.asarray(x))


def host_or_device_2d(x: Any, name: str):
    """``x`` as a non-empty 2-D floating array (host arrays stay NumPy; half precision widened)."""
    if x is None:
        raise ValueError(f"{name}: expected an array of shape [n, d], got None")
    refuse_tracer(x, name)
    x = from_torch(x)
    if not isinstance(x, (jax.Array, np.ndarray)):
        try:
            x = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name}: cannot be converted to an array ({exc})") from exc
    dtype = np.dtype(x.dtype)
    if not is_floating(dtype):
        raise ValueError(f"{name}: expected a floating-point array (float32 or float64), got dtype {dtype}")
    x = widen_half(x)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [n, d], got shape {tuple(x.shape)}")
    n, d = x.shape
    if d == 0:
        raise ValueError(f"{name}: embeddings have zero dimensions (shape {tuple(x.shape)})")
    if n == 0:
        raise ValueError(f"{name}: empty set of embeddings (shape {tuple(x.shape)})")
    return x


def host_rows(x: Any, name: str, *, nonzero: bool = False) -> np.ndarray:
    """``x`` as a checked host ``[n, d]`` float32|float64 NumPy array (given points: landmarks, ω)."""
    a = np.asarray(host_or_device_2d(x, name))
    check_rows(a, name, nonzero=nonzero)
    return a


def check_finite_rows(x: Any, name: str, *, row_offset: int = 0, where: str = "") -> None:
    """Raise if any entry of ``x`` is NaN or ±Inf, naming the first bad row (:func:`check_rows`)."""
    check_rows(x, name, row_offset=row_offset, locate=(lambda _row: where) if where else None)


def check_nonzero_rows(x: jax.Array, name: str) -> None:
    """The cosine kernel divides by row norms: a zero row has no direction."""
    check_rows(x, name, nonzero=True)


def check_nonzero_columns(x: jax.Array, name: str) -> None:
    """The clip-dissection cosine convention divides by column norms."""
    norms = jnp.linalg.norm(x, axis=0)
    zero = np.asarray(norms == 0)
    if zero.any():
        raise ValueError(
            f"{name}: column {int(np.flatnonzero(zero)[0])} has zero norm; the "
            "clip-dissection convention normalises columns"
        )


#: Why a path needs texts and images of one dimension (the end of check_pair's message).
GAUSSIAN_SAME_DIM = "the Gaussian kernel shares one feature map (one omega) between texts and images"


def check_pair(images: jax.Array, texts: jax.Array, *, same_dim: bool, why: str = GAUSSIAN_SAME_DIM) -> None:
    """Images and texts are paired by row; ``same_dim``: they must share d (``why`` says why)."""
    if images.shape[0] != texts.shape[0]:
        raise ValueError(
            f"texts: {texts.shape[0]} rows but images has {images.shape[0]}; "
            "row i of texts must be the prompt of row i of images"
        )
    if same_dim and images.shape[1] != texts.shape[1]:
        raise ValueError(f"texts: dimension {texts.shape[1]} differs from images' {images.shape[1]}; {why}")


class DimensionMismatchWarning(UserWarning):
    """Images and texts of different dimensions: probably embeddings of two different CLIP models."""


def warn_dimension_mismatch(d_images: int, d_texts: int) -> None:
    """Warn when paired images and texts differ in dimension (the cosine kernel accepts it; CLIP pairs
    share one embedding space, so different d usually means two different models)."""
    if d_images != d_texts:
        from ._warnings import warn_user

        warn_user(
            f"texts: dimension {d_texts} differs from images' {d_images}: CLIP embeds images and texts in one "
            "space of one dimension, so these are probably embeddings of two different models; the cosine "
            "kernel scores them, but check that the pairs come from the same CLIP model",
            DimensionMismatchWarning)


def refuse_tracer(x: Any, name: str) -> None:
    """The host API converts its inputs to concrete arrays: under jit / grad / vmap point to
    :mod:`clipcore.functional` instead of failing deep inside with a tracer error."""
    if isinstance(x, jax.core.Tracer):
        raise TypeError(
            f"{name}: the host API (clipcore.sce / vendi / rke / ...) reads concrete arrays and cannot run "
            "under jax.jit, jax.grad or jax.vmap; inside JAX programs use the pure functions of "
            "clipcore.functional (e.g. clipcore.functional.sce(images, texts)), which jit, differentiate and "
            "batch")


def from_torch(x: Any) -> Any:
    """A torch tensor of any floating dtype as a JAX or NumPy array, detached (no copy through DLPack
    where the device allows; bfloat16 through JAX, which has the dtype); anything else unchanged."""
    if type(x).__module__.split(".")[0] != "torch" or not hasattr(x, "detach"):
        return x
    t = x.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    try:
        return jax.dlpack.from_dlpack(t)
    except Exception:  # a dtype or layout DLPack cannot carry to JAX here
        return t.float().numpy() if t.is_floating_point() else t.numpy()


def check_sigma(sigma: Any, name: str = "sigma", *, required: bool = False) -> float | None:
    """The one σ check: a finite positive number (NumPy scalars and 0-d / 1-element arrays accepted),
    or None when not ``required``."""
    if sigma is None:
        if required:
            raise ValueError(f"{name}: the Gaussian bandwidth is needed; pass a positive number")
        return None
    if isinstance(sigma, bool):
        raise ValueError(f"{name}: expected a positive number, got {sigma!r}")
    try:
        arr = np.asarray(sigma, dtype=np.float64)
        if arr.size != 1:
            raise TypeError
        value = float(arr.reshape(()))
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive number, got {sigma!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: the Gaussian bandwidth must be a finite positive number, got {value}")
    return value


def check_flag(value: Any, name: str) -> bool:
    """A boolean option (Python or NumPy bool)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name}: expected True or False, got {value!r}")


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
