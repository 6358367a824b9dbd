"""clipcore._validate: the one row checker, the one σ check and the option checks (unit tests below), and every
bad input of the public entry points raising a ValueError whose message names the argument."""

from __future__ import annotations

import re

import numpy as np
import pytest

clipcore = pytest.importorskip("clipcore")
from clipcore import _validate as V  # noqa: E402

RNG = np.random.default_rng(0)
N, D = 40, 8
X = RNG.standard_normal((N, D))
T = RNG.standard_normal((N, D))


def raises_naming(name):
    """ValueError whose message names ``name`` (as a word)."""
    return pytest.raises(ValueError, match=rf"(?<![\w]){re.escape(name)}(?![\w])")


def with_value(a, row, col, value):
    a = a.copy()
    a[row, col] = value
    return a


# ---------------------------------------------------------------------------
# images / texts
# ---------------------------------------------------------------------------
BAD_ARRAYS = {
    "nan": lambda a: with_value(a, 3, 2, np.nan),
    "inf": lambda a: with_value(a, 5, 0, np.inf),
    "-inf": lambda a: with_value(a, 0, 7, -np.inf),
    "empty": lambda a: a[:0],
    "1-D": lambda a: a[0],
    "3-D": lambda a: a[None],
    "int": lambda a: np.round(a * 10).astype(np.int64),
    "bool": lambda a: a > 0,
    "object": lambda a: np.array([["a"] * D] * N, dtype=object),
    "zero-dim": lambda a: a[:, :0],
}


@pytest.mark.parametrize("bad", sorted(BAD_ARRAYS))
@pytest.mark.parametrize("which", ["images", "texts"])
@pytest.mark.parametrize("kernel", ["cosine", "gaussian"])
def test_sce_bad_arrays(which, bad, kernel):
    x, t = X, T
    if which == "images":
        x = BAD_ARRAYS[bad](X)
    else:
        t = BAD_ARRAYS[bad](T)
    kw = dict(kernel=kernel, sigma=1.0) if kernel == "gaussian" else {}
    with raises_naming(which):
        clipcore.sce(x, t, **kw)


@pytest.mark.parametrize("bad", sorted(BAD_ARRAYS))
@pytest.mark.parametrize("which", ["images", "texts"])
def test_fit_editor_bad_arrays(which, bad):
    x, t = X, T
    if which == "images":
        x = BAD_ARRAYS[bad](X)
    else:
        t = BAD_ARRAYS[bad](T)
    with raises_naming(which):
        clipcore.fit_editor(x, t)


@pytest.mark.parametrize("bad", sorted(BAD_ARRAYS))
def test_vendi_bad_arrays(bad):
    with raises_naming("x"):
        clipcore.vendi(BAD_ARRAYS[bad](X))
    with raises_naming("x"):
        clipcore.rke(BAD_ARRAYS[bad](X), kernel="gaussian", sigma=1.0)


def test_none_input():
    with raises_naming("images"):
        clipcore.sce(None, T)
    with raises_naming("texts"):
        clipcore.sce(X, None)


def test_mismatched_n():
    # which of the two is named is the implementation's choice; one of them must be
    with pytest.raises(ValueError, match=r"images|texts"):
        clipcore.sce(X, T[:-1])
    with pytest.raises(ValueError, match=r"images|texts"):
        clipcore.fit_editor(X[:-2], T)


def test_mismatched_dim_gaussian_but_not_cosine():
    t_small = T[:, :5]
    with pytest.raises(ValueError, match=r"images|texts"):
        clipcore.sce(X, t_small, kernel="gaussian", sigma=1.0)
    with pytest.raises(ValueError, match=r"images|texts"):
        clipcore.sce(X, t_small, kernel="gaussian", sigma=1.0, rff_features=16)
    # cosine: φ is per-set, any dimensions
    res = clipcore.sce(X, t_small)
    assert res.complement_eigenvalues.shape == (D,)


@pytest.mark.parametrize("which", ["images", "texts"])
def test_zero_norm_rows_cosine(which):
    x, t = X.copy(), T.copy()
    (x if which == "images" else t)[7] = 0.0
    with raises_naming(which):
        clipcore.sce(x, t)
    with raises_naming(which):
        clipcore.sce(x, t, convention="clip-dissection")
    with raises_naming(which):
        clipcore.fit_editor(x, t)
    # the Gaussian kernel has no problem with a zero row
    res = clipcore.sce(x, t, kernel="gaussian", sigma=1.0, rff_features=16)
    assert np.isfinite(res.sce)


def test_zero_norm_row_vendi():
    x = X.copy()
    x[2] = 0
    with raises_naming("x"):
        clipcore.vendi(x)


# ---------------------------------------------------------------------------
# kernel options
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.0, -1.0, np.nan, np.inf, "wide", -0.5])
def test_bad_sigma(sigma):
    with raises_naming("sigma"):
        clipcore.sce(X, T, kernel="gaussian", sigma=sigma)
    with raises_naming("sigma"):
        clipcore.sce(X, T, kernel="gaussian", sigma=sigma, rff_features=16)
    with raises_naming("sigma"):
        clipcore.vendi(X, kernel="gaussian", sigma=sigma)
    with raises_naming("sigma"):
        clipcore.fit_editor(X, T, kernel="gaussian", sigma=sigma, rff_features=16)


@pytest.mark.parametrize("rff", [0, -3, 2.5, 16.0, "16", True, np.nan])
def test_bad_rff_features(rff):
    with raises_naming("rff_features"):
        clipcore.sce(X, T, kernel="gaussian", sigma=1.0, rff_features=rff)
    with raises_naming("rff_features"):
        clipcore.vendi(X, kernel="gaussian", sigma=1.0, rff_features=rff)
    with raises_naming("rff_features"):
        clipcore.fit_editor(X, T, kernel="gaussian", sigma=1.0, rff_features=rff)


def test_numpy_integer_rff_features_accepted():
    res = clipcore.sce(X, T, kernel="gaussian", sigma=1.0, rff_features=np.int64(16))
    assert res.num_features == 32


OMEGA_BAD = {
    "wrong d": np.ones((D + 1, 16)),
    "1-D": np.ones(16),
    "3-D": np.ones((1, D, 16)),
    "nan": with_value(np.ones((D, 16)), 0, 0, np.nan),
    "int": np.ones((D, 16), dtype=np.int32),
    "empty": np.ones((D, 0)),
}


@pytest.mark.parametrize("bad", sorted(OMEGA_BAD))
def test_bad_omega(bad):
    om = OMEGA_BAD[bad]
    with raises_naming("omega"):
        clipcore.sce(X, T, kernel="gaussian", omega=om)
    with raises_naming("omega"):
        clipcore.vendi(X, kernel="gaussian", omega=om)
    with raises_naming("omega"):
        clipcore.fit_editor(X, T, kernel="gaussian", omega=om)


def test_omega_disagreeing_with_rff_features():
    with pytest.raises(ValueError, match=r"omega|rff_features"):
        clipcore.sce(X, T, kernel="gaussian", omega=np.ones((D, 16)), rff_features=32)


def test_gaussian_only_options_with_cosine():
    for kw in (dict(sigma=1.0), dict(rff_features=16), dict(omega=np.ones((D, 16)))):
        (name,) = kw
        with raises_naming(name):
            clipcore.sce(X, T, **kw)


def test_exact_gaussian_editor_needs_features():
    with raises_naming("rff_features"):
        clipcore.fit_editor(X, T, kernel="gaussian", sigma=1.0)


def test_exact_gaussian_has_no_primal():
    with raises_naming("method"):
        clipcore.sce(X, T, kernel="gaussian", sigma=1.0, method="primal")


# ---------------------------------------------------------------------------
# choices and numeric options
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,value", [
    ("kernel", "laplace"), ("kernel", "Cosine"), ("method", "svd"), ("convention", "torch"),
    ("dtype", "int32"), ("dtype", "float16x"), ("backend", "cuda-magic"),
    ("rtol", -1.0), ("rtol", np.nan), ("ridge", -1e-3), ("ridge", 0.0),
    ("clamp", 0.0), ("clamp", -1e-10), ("block_size", 0), ("block_size", 2.5),
])
def test_bad_options_sce(name, value):
    with raises_naming(name):
        clipcore.sce(X, T, **{name: value})


@pytest.mark.parametrize("name,value", [
    ("rtol", -1.0), ("rtol", np.inf), ("rtol", "big"), ("ridge", 0.0), ("ridge", np.nan),
    ("convention", "torch"), ("kernel", "laplace"), ("block_size", 0),
])
def test_bad_options_fit_editor(name, value):
    with raises_naming(name):
        clipcore.fit_editor(X, T, **{name: value})


@pytest.mark.parametrize("order", [0, -1, "two", None, np.nan])
def test_bad_order(order):
    with raises_naming("order"):
        clipcore.vendi(X, order=order)


def test_rke_rejects_order():
    with raises_naming("order"):
        clipcore.rke(X, order=3)


def test_editor_query_validation():
    ed = clipcore.fit_editor(X, T)
    with raises_naming("image"):
        ed.nullify(np.ones(D + 1), T[0])
    with raises_naming("text"):
        ed.nullify(X[0], np.ones((2, D - 1)))
    with raises_naming("image"):
        ed.nullify(with_value(X[:2], 0, 0, np.nan), T[:2])
    with raises_naming("text"):
        ed.nullify(X[:2], np.zeros((2, D)))  # zero-norm query under the cosine kernel
    with raises_naming("image"):
        ed.nullify(np.ones((2, D), dtype=np.int32), T[:2])


def test_valid_inputs_pass():
    """The happy path of every validated option (so the checks are not over-eager)."""
    assert np.isfinite(clipcore.sce(X, T, dtype="float32", method="dual", rtol=1e-3, clamp=None).sce)
    assert np.isfinite(clipcore.sce(X, T, ridge=1e-6).sce)
    assert np.isfinite(clipcore.sce(X.astype(np.float32), T.astype(np.float32), kernel="gaussian",
                                    sigma=2, rff_features=8, normalize=True).sce)
    assert np.isfinite(clipcore.vendi(X.tolist(), order=np.inf).score)
    assert np.isfinite(clipcore.vendi(X, order="inf").score)


# ---------------------------------------------------------------------------
# the checkers themselves
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("device", [False, True], ids=["host", "device"])
def test_check_rows_names_the_first_bad_row(device):
    import jax.numpy as jnp

    a = np.ones((6, 3))
    a[4, 1], a[2, 0] = np.nan, np.inf
    put = jnp.asarray if device else (lambda v: v)
    with pytest.raises(ValueError, match=r"^images: contains Inf at row 2$"):
        V.check_rows(put(a), "images")
    a[2, 0] = 1.0
    with pytest.raises(ValueError, match=r"^images: contains NaN at row 4$"):
        V.check_rows(put(a), "images")
    # blocks of a stream: the global row, and where it lives
    with pytest.raises(ValueError, match=r"^x: contains NaN at row 104 \(shard b.npy, row 4\)$"):
        V.check_rows(put(a), "x", row_offset=100, locate=lambda g: f"shard b.npy, row {g - 100}")
    z = np.ones((5, 2))
    z[3] = 0.0
    V.check_rows(put(z), "texts")  # zero rows are fine unless asked
    with pytest.raises(ValueError, match=r"^texts: row 3 has zero norm; the cosine kernel needs a direction"):
        V.check_rows(put(z), "texts", nonzero=True)
    # a finite row whose sum of squares overflows is not refused (told apart by a second look at that row)
    big = np.full((3, 4), 1e200)
    V.check_rows(put(big), "x", nonzero=True)
    with pytest.raises(ValueError, match=r"^x: contains NaN at row 1 \(a.npy\)$"):
        V.check_finite_rows(np.array([[1.0], [np.nan]]), "x", where="a.npy")


@pytest.mark.parametrize("good, value", [
    (1.5, 1.5), (np.float32(2.0), 2.0), (np.array(3.0), 3.0), (np.array([4.0]), 4.0), (7, 7.0), (None, None),
])
def test_check_sigma_accepts(good, value):
    assert V.check_sigma(good) == value


@pytest.mark.parametrize("bad, message", [
    (0.0, "sigma: the Gaussian bandwidth must be a finite positive number, got 0.0"),
    (-1.0, "sigma: the Gaussian bandwidth must be a finite positive number, got -1.0"),
    (np.nan, "sigma: the Gaussian bandwidth must be a finite positive number, got nan"),
    (np.inf, "sigma: the Gaussian bandwidth must be a finite positive number, got inf"),
    (True, "sigma: expected a positive number, got True"),
    ("wide", "sigma: expected a positive number, got 'wide'"),
    (np.ones(2), "sigma: expected a positive number"),
])
def test_check_sigma_refuses(bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        V.check_sigma(bad)


def test_check_sigma_required_and_named():
    with pytest.raises(ValueError, match=r"^sigma: the Gaussian bandwidth is needed; pass a positive number$"):
        V.check_sigma(None, required=True)
    with pytest.raises(ValueError, match=r"^bandwidth: the Gaussian bandwidth must be a finite positive number"):
        V.check_sigma(-2, "bandwidth")


def test_option_checkers():
    assert V.check_positive_int(np.int64(5), "k") == 5 and V.check_positive_int(None, "k") is None
    for bad, msg in ((0, "k: expected a positive integer, got 0"), (True, "k: expected a positive integer, got True"),
                     (2.0, "k: expected a positive integer, got the float 2.0 (pass int(2.0))"),
                     ("3", "k: expected a positive integer, got '3'")):
        with pytest.raises(ValueError, match=re.escape(msg)):
            V.check_positive_int(bad, "k")
    assert V.check_number(None, "rtol", positive=False, default=0.5) == 0.5
    assert V.check_number(0, "rtol", positive=False) == 0.0
    for bad, positive, msg in ((0, True, "ridge: expected a finite number > 0, got 0.0"),
                               (-1, False, "ridge: expected a finite number ≥ 0, got -1.0"),
                               ("x", True, "ridge: expected a finite number > 0, got 'x'"),
                               (np.inf, True, "ridge: expected a finite number > 0, got inf")):
        with pytest.raises(ValueError, match=re.escape(msg)):
            V.check_number(bad, "ridge", positive=positive)
    assert V.check_choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=re.escape("mode: expected one of 'a', 'b', got 'c'")):
        V.check_choice("c", "mode", ("a", "b"))
    assert V.check_flag(np.bool_(True), "normalize") is True
    with pytest.raises(ValueError, match="normalize: expected True or False, got 1"):
        V.check_flag(1, "normalize")


def test_embeddings_are_widened_and_checked():
    import jax

    half = np.ones((3, 2), np.float16)
    assert V.widen_half(half).dtype == np.float32 and V.widen_half(X).dtype == np.float64
    assert V.is_floating(jax.numpy.bfloat16) and not V.is_floating(np.int32)
    e = V.as_embeddings(half, "images")
    assert isinstance(e, jax.Array) and e.dtype == np.float32
    h = V.host_rows([[1.0, 2.0]], "omega")
    assert isinstance(h, np.ndarray) and h.shape == (1, 2)
    with pytest.raises(ValueError, match="^omega: contains NaN at row 0$"):
        V.host_rows([[np.nan, 1.0]], "omega")
    with pytest.raises(ValueError, match=r"^texts: 3 rows but images has 4"):
        V.check_pair(np.ones((4, 2)), np.ones((3, 2)), same_dim=False)
    V.check_pair(np.ones((4, 2)), np.ones((4, 5)), same_dim=False)
    with pytest.raises(ValueError, match=r"^texts: dimension 5 differs from images' 2"):
        V.check_pair(np.ones((4, 2)), np.ones((4, 5)), same_dim=True)
    cols = np.ones((4, 3))
    cols[:, 1] = 0
    with pytest.raises(ValueError, match="^images: column 1 has zero norm; the clip-dissection convention"):
        V.check_nonzero_columns(cols, "images")
