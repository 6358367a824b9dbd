"""Loading and registering the compiled core (clipcore._ffi.registration), and the package's flat names.

Every name ``clipcore._ffi.X`` that existed before the split into a package
still resolves (the callers, tests and benchmarks use them), and a missing
extension leaves the package importable with a reason.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from clipcore import _ffi, kernels

needs_ext = pytest.mark.skipif(
    not _ffi.available(), reason=f"compiled extension unavailable: {_ffi.unavailable_reason()}"
)

# Every public name of the single-file clipcore/_ffi.py, with the module that now holds it.
FLAT_NAMES = {
    "registration": ["available", "unavailable_reason", "cuda_available", "blas_info", "PREFERRED"],
    "gram": ["gram_accumulate", "gram_accumulate_jax", "joint_gram_accumulate", "joint_gram_accumulate_jax",
             "GRAM_TARGET", "JOINT_GRAM_TARGET"],
    "linalg": ["eigvalsh", "EIGVALSH_TARGET"],
    "kernel": ["nystrom_accumulate", "nystrom_accumulate_jax", "gaussian_sq_frobenius",
               "gaussian_sq_frobenius_jax", "NYSTROM_TARGET", "NYSTROM_PAIRED_TARGET", "KERNEL_ACC_TARGET",
               "KERNEL_ACC_PAIRED_TARGET", "SQ_FROBENIUS_TARGET"],
    "cholesky": ["pivoted_cholesky", "pivoted_cholesky_jax", "PivotedCholesky", "MIN_PIVOT",
                 "PIVOTED_CHOLESKY_TARGET"],
    "host": ["gaussian_sq_frobenius_host", "joint_gram_host", "nystrom_host", "pivoted_cholesky_host",
             "release_buffers", "host_entry_available"],
}


@pytest.mark.parametrize("module", sorted(FLAT_NAMES))
def test_flat_names_are_the_modules_names(module):
    mod = getattr(_ffi, module)
    for name in FLAT_NAMES[module]:
        assert getattr(_ffi, name) is getattr(mod, name), name
        assert name in _ffi.__all__, name


def test_target_names_are_unchanged():
    assert (_ffi.GRAM_TARGET, _ffi.JOINT_GRAM_TARGET, _ffi.EIGVALSH_TARGET) == (
        "clipcore_gram_accumulate", "clipcore_joint_gram_accumulate", "clipcore_eigvalsh")
    assert (_ffi.NYSTROM_TARGET, _ffi.NYSTROM_PAIRED_TARGET, _ffi.KERNEL_ACC_TARGET,
            _ffi.KERNEL_ACC_PAIRED_TARGET, _ffi.SQ_FROBENIUS_TARGET, _ffi.PIVOTED_CHOLESKY_TARGET) == (
        "clipcore_nystrom_accumulate", "clipcore_nystrom_accumulate_paired", "clipcore_kernel_accumulate",
        "clipcore_kernel_accumulate_paired", "clipcore_gaussian_sq_frobenius", "clipcore_pivoted_cholesky")
    assert _ffi.MIN_PIVOT == 1e-10 and _ffi.PREFERRED is True


def test_gaussian_tile_jax_is_the_one_gaussian_tile():
    assert _ffi.gaussian_tile_jax is kernels.gaussian_tile


def test_raw_extension_attribute_still_resolves():
    """Modules not yet on the host entries of _ffi.host still reach the extension as _ffi._ext."""
    assert (_ffi._ext is not None) == _ffi.available()
    assert _ffi._ext is _ffi.registration.loaded_extension()


def test_available_reports_a_reason_when_not():
    assert isinstance(_ffi.available(), bool)
    if _ffi.available():
        assert _ffi.unavailable_reason() is None
    else:
        assert _ffi.unavailable_reason()


def test_missing_extension_reports_unavailable():
    """A broken or absent _ext leaves available() False with a reason, no crash."""
    code = (
        "import sys; sys.modules['clipcore._ext'] = None\n"
        "import jax.numpy as jnp\n"
        "import numpy as np\n"
        "from clipcore import _ffi\n"
        "assert not _ffi.available()\n"
        "assert 'could not be imported' in _ffi.unavailable_reason()\n"
        "assert _ffi._ext is None and not _ffi.host_entry_available('nystrom_host')\n"
        "for call in (lambda: _ffi.gram_accumulate(jnp.zeros((2, 2)), jnp.zeros((3, 2))),\n"
        "             lambda: _ffi.release_buffers(),\n"
        "             lambda: _ffi.nystrom_host(np.zeros((1, 1)), np.ones((2, 1)), None, np.ones((1, 1)), 1.0)):\n"
        "    try:\n"
        "        call()\n"
        "    except RuntimeError as e:\n"
        "        assert 'could not be imported' in str(e)\n"
        "    else:\n"
        "        raise AssertionError('no error')\n"
        "print(_ffi.gram_accumulate_jax(jnp.zeros((2, 2)), jnp.ones((3, 2)))[0, 0])\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "3.0"


@needs_ext
def test_blas_info_names_openblas():
    info = _ffi.blas_info()
    assert "OpenBLAS" in info and "clipcore_threads=" in info


@needs_ext
def test_registration_is_idempotent():
    _ffi.registration.load()  # a second load must neither raise nor re-register
    assert _ffi.available()


@needs_ext
def test_extension_is_the_loaded_module():
    assert _ffi.registration.extension() is _ffi.registration.loaded_extension()
    assert hasattr(_ffi.registration.extension(), "registrations")
