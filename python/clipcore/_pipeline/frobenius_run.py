"""The exact Gaussian RKE n² / ‖K‖_F² of one call: by row panels with a progress bar of pairs (rows in
host memory for the compiled core, or streamed from files: two panels in memory), else in one call of
the target (rows on an accelerator)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._progress import bar, busy
from ..frobenius import kernel_sq_frobenius, sq_frobenius_panels
from ..sources import check_block
from .inputs import Inputs

__all__ = ["FROBENIUS_PANEL_VALUES", "panel_rows", "frobenius_sq"]

#: Rows per panel of the exact ‖K‖_F² from files: two panels of 2²⁵ values (128 MiB each in float32)
#: are in memory at a time.
FROBENIUS_PANEL_VALUES = 1 << 25


def panel_rows(n: int, d: int, *, streamed: bool) -> int:
    """Rows per panel, a multiple of the core's 512-row tile: bounded by memory for streamed rows; for
    rows in memory about 16 panels (the progress bar's steps)."""
    rows = FROBENIUS_PANEL_VALUES // max(d, 1) if streamed else max(2048, -(-n // 16))
    return int(max(512, -(-rows // 512) * 512))


def _prep(a, dt: np.dtype, normalize: bool) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64 if normalize else dt)
    if normalize:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return np.ascontiguousarray(a, dtype=dt)


def _on_host(x) -> bool:
    return isinstance(x, np.ndarray) or all(dev.platform == "cpu" for dev in x.devices())


def frobenius_sq(inputs: Inputs, sigma: float, precision, execution, normalize: bool) -> tuple[float, int]:
    """(‖K‖_F², n) of the Gaussian kernel with bandwidth ``sigma`` over the call's rows."""
    src, backend = inputs.src, execution.backend
    if inputs.iterator or inputs.distributed:
        raise ValueError("method: 'frobenius' reads the rows several times (panel against panel); an iterator "
                         "or a distributed source is read once: pass files, shards or an array")
    dt = np.dtype(precision.feature)
    if src is None and not (backend == "ffi" and _on_host(inputs.images)):
        x = jnp.asarray(inputs.images)  # rows on an accelerator: one call of the target (CUDA) or its JAX twin
        if normalize:
            x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
        with busy("rke (exact ‖K‖_F²)", execution.progress):
            f = kernel_sq_frobenius(x.astype(precision.feature), kernel="gaussian", sigma=sigma, backend=backend)
        return f, int(x.shape[0])
    if src is not None:
        n, d = src.n, src.d_images

        def read(a, b):
            rows = src.images.read(a, b)
            check_block(rows, src.name, a, src.images.locate, nonzero=normalize)
            return _prep(rows, dt, normalize)
    else:
        host = _prep(inputs.images, dt, normalize)
        n, d = host.shape

        def read(a, b):
            return host[a:b]

    streamed = src is not None and not src.in_memory
    with bar(n * (n + 1) // 2, "rke (exact ‖K‖_F²)", execution.progress, unit="pairs") as progress:
        f = sq_frobenius_panels(read, n, sigma, panel_rows=panel_rows(n, d, streamed=streamed), backend=backend,
                                on_pairs=progress.update)
    return f, n
