"""The compiled core (``clipcore._ext``) as XLA FFI calls, each with a pure-JAX twin; the only code of
clipcore that touches ``_ext``.

One module per concern, every name re-exported here flat (``clipcore._ffi.X``):

* :mod:`.registration`: loading the extension, registering its targets for
  ``"cpu"`` (and ``"CUDA"`` in a CUDA build); :func:`available`,
  :func:`unavailable_reason`, :func:`cuda_available`, :func:`blas_info`,
  :data:`PREFERRED`.
* :mod:`.checks`: the entry points' shape / dtype / attribute checks and the σ operand.
* :mod:`.gram`: ``G + Φᵀ Φ`` (:func:`gram_accumulate`) and the packed joint
  Gram ``G + [f(A) | f(B)]ᵀ [f(A) | f(B)]`` (:func:`joint_gram_accumulate`).
* :mod:`.linalg`: LAPACK eigenvalues without eigenvectors (:func:`eigvalsh`).
* :mod:`.kernel`: the Nyström / Gaussian-kernel accumulations
  (:func:`nystrom_accumulate`) and the streamed ‖K‖_F² (:func:`gaussian_sq_frobenius`).
* :mod:`.cholesky`: greedy pivoted Cholesky of the Gaussian kernel (:func:`pivoted_cholesky`).
* :mod:`.host`: the host entries (NumPy rows, outside XLA): :func:`joint_gram_host`,
  :func:`nystrom_host`, :func:`pivoted_cholesky_host`, :func:`gaussian_sq_frobenius_host`,
  :func:`release_buffers`, :func:`host_entry_available`.

Importing the package loads the extension and registers its targets (once).
If the extension cannot be loaded, :func:`available` is False,
:func:`unavailable_reason` says why, and callers use the twins (``*_jax``).

Every compiled operation is closed under ``jit``, ``grad`` / ``jvp`` / ``vjp``
and ``vmap``: a pure-JAX twin (the reference and the fallback off CPU), a
differentiation rule (``jax.custom_jvp``, acting only under differentiation:
the jitted forward pass is the FFI call alone) and a ``vmap_method`` on each
``ffi_call``. The rules are described in each module's docstring.
"""

from __future__ import annotations

from ..kernels import gaussian_tile as gaussian_tile_jax
from . import band, checks, cholesky, gram, host, kernel, linalg, registration
from .band import apply_reflectors, band_available, band_eigenvectors, band_reduce
from .cholesky import (
    MIN_PIVOT,
    PIVOTED_CHOLESKY_TARGET,
    PivotedCholesky,
    fixed_pivot_factors,
    pivoted_cholesky,
    pivoted_cholesky_jax,
)
from .gram import (
    GRAM_TARGET,
    JOINT_GRAM_TARGET,
    gram_accumulate,
    gram_accumulate_jax,
    gram_tangent,
    joint_gram_accumulate,
    joint_gram_accumulate_jax,
)
from .host import (
    gaussian_sq_frobenius_host,
    host_entry_available,
    joint_gram_host,
    nystrom_host,
    pivoted_cholesky_host,
    release_buffers,
)
from .kernel import (
    KERNEL_ACC_PAIRED_TARGET,
    KERNEL_ACC_TARGET,
    NYSTROM_PAIRED_TARGET,
    NYSTROM_TARGET,
    SQ_FROBENIUS_TARGET,
    gaussian_sq_frobenius,
    gaussian_sq_frobenius_jax,
    nystrom_accumulate,
    nystrom_accumulate_jax,
)
from .linalg import EIGVALSH_TARGET, eigvalsh, eigvalsh_jax, eigvalsh_tangent
from .registration import PREFERRED, available, blas_info, cuda_available, load, unavailable_reason
from .hadamard import *  # noqa: F401,F403 (the Hadamard-kernel ‖K_X∘K_T‖_F², its twin and host entry)

#: The raw extension module (None when it could not be loaded), kept for modules not yet migrated to
#: the public host entries of :mod:`.host`; new code uses those.
_ext = registration.loaded_extension()

__all__ = [
    "band_available",
    "band_reduce",
    "band_eigenvectors",
    "apply_reflectors",
    "available",
    "unavailable_reason",
    "cuda_available",
    "blas_info",
    "load",
    "PREFERRED",
    "gram_accumulate",
    "gram_accumulate_jax",
    "joint_gram_accumulate",
    "joint_gram_accumulate_jax",
    "GRAM_TARGET",
    "JOINT_GRAM_TARGET",
    "EIGVALSH_TARGET",
    "eigvalsh",
    "eigvalsh_jax",
    "eigvalsh_tangent",
    "gram_tangent",
    "fixed_pivot_factors",
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
    "gaussian_sq_frobenius_host",
    "PivotedCholesky",
    "pivoted_cholesky",
    "pivoted_cholesky_jax",
    "MIN_PIVOT",
    "joint_gram_host",
    "nystrom_host",
    "pivoted_cholesky_host",
    "release_buffers",
    "host_entry_available",
    "band",
    "checks",
    "cholesky",
    "gram",
    "host",
    "kernel",
    "linalg",
    "registration",
]
