"""The compiled core leaves its OpenBLAS thread count as it found it.

The setting is process-wide for the library copy the extension links (scipy-openblas32), and SciPy's LAPACK
can resolve its BLAS symbols (the same ``scipy_`` names) to that copy: a Gram accumulation that left it at
one thread made every later ``scipy.linalg`` call in the process single-threaded (issue 18: a 5000×5000
``?sytrd`` took 9.3 s instead of 4.5 s after an RFF score). Each core entry point below sets the count it
needs for its own work (one thread per participant, or every thread for one LAPACK call) and restores it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from clipcore import _ffi  # noqa: E402

threadpoolctl = pytest.importorskip("threadpoolctl")

needs_ext = pytest.mark.skipif(
    not _ffi.available(), reason=f"compiled extension unavailable: {_ffi.unavailable_reason()}"
)


def _core_blas():
    """threadpoolctl's controller of the OpenBLAS copy the extension links."""
    libs = [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers
            if "scipy_openblas32" in lib.filepath]
    if not libs:
        pytest.skip("the extension's OpenBLAS (scipy-openblas32) is not loaded under threadpoolctl")
    return libs[0]


def _calls():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((3000, 32)))
    t = jnp.asarray(rng.standard_normal((3000, 32)))
    g = jnp.zeros((64, 64))
    return {
        "gram": lambda: _ffi.gram_accumulate(jnp.zeros((32, 32)), x),
        "joint gram": lambda: _ffi.joint_gram_accumulate(g, t, x, normalize=True),
        "nystrom": lambda: _ffi.nystrom_accumulate(jnp.zeros((40, 40)), x, x[:40], None, 3.0),
        "kernel frobenius": lambda: _ffi.gaussian_sq_frobenius(x, 3.0),
        "pivoted cholesky": lambda: _ffi.pivoted_cholesky(x, 3.0, 20),
        "eigvalsh": lambda: _ffi.eigvalsh(jnp.eye(300) + x[:300, :1] * x[:300, :1].T),
    }


@needs_ext
@pytest.mark.parametrize("name", list(_calls()))
@pytest.mark.parametrize("count", [2, 3])
def test_core_calls_restore_the_openblas_thread_count(name, count):
    _ffi.eigvalsh(jnp.eye(4)).block_until_ready()  # the extension and its OpenBLAS loaded
    lib = _core_blas()
    before = lib.num_threads
    try:
        lib.set_num_threads(count)
        assert lib.get_num_threads() == count
        jax.block_until_ready(_calls()[name]())
        assert lib.get_num_threads() == count, name
    finally:
        lib.set_num_threads(before)
