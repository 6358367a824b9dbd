"""clipcore._options: the option groups, the one key rule, the one backend rule — and the contract that a
bogus value of ANY option raises a ValueError naming it, whichever path the call takes."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

import clipcore
from clipcore import _options as O

try:
    from reference import sce_numpy as ref
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as ref

RNG = np.random.default_rng(0)
N, D = 60, 8
X = RNG.standard_normal((N, D))
T = X + 0.3 * RNG.standard_normal((N, D))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("opts")
    np.save(d / "x.npy", X)
    np.save(d / "t.npy", T)
    return str(d / "x.npy"), str(d / "t.npy")


# each path of sce, reached by its own options
SCE_PATHS = {
    "cosine primal": dict(),
    "cosine dual": dict(method="dual"),
    "clip-dissection": dict(convention="clip-dissection"),
    "gaussian exact dual": dict(kernel="gaussian", sigma=1.0),
    "gaussian rff": dict(kernel="gaussian", sigma=1.0, rff_features=16),
    "gaussian nystrom": dict(kernel="gaussian", sigma=1.0, landmarks=10),
}
VENDI_PATHS = dict(SCE_PATHS, frobenius=dict(kernel="gaussian", sigma=1.0, method="frobenius"))
del VENDI_PATHS["clip-dissection"]

# option -> bogus values (each must be refused, naming the option)
BOGUS = {
    "kernel": ["rbf"],
    "sigma": [-1.0, "wide", float("nan")],
    "rff_features": [0, 2.5, "many"],
    "omega": ["abc", np.ones(3)],
    "key": ["seed", -3, 1.5],
    "method": ["bogus"],
    "convention": ["nope"],
    "dtype": ["int8"],
    "rtol": [-1.0, float("inf")],
    "ridge": [0.0, -1.0],
    "clamp": [-1e-10, "x"],
    "normalize": ["yes"],
    "block_size": [0, -5, 1.5],
    "backend": ["gpu"],
    "progress": ["yes", 2],
    "landmarks": [0, -5, "many", np.ones(4)],
    "landmark_method": ["nope"],
    "estimate": ["bogus"],
    "residual_sample": [-5, 0],
    "mesh": ["m", 0],
}
VENDI_ONLY = {"order": [0, -1.0, "two"]}
SCE_ONLY = ("convention", "rtol", "ridge")


def _cases(paths, options):
    for path, base in paths.items():
        for opt, values in options.items():
            for v in values:
                yield pytest.param(base, opt, v, id=f"{path}-{opt}={v!r}")


def _raises(name):
    return pytest.raises(ValueError, match=rf"^{re.escape(name)}:")


@pytest.mark.parametrize("base,opt,value", list(_cases(SCE_PATHS, BOGUS)))
def test_sce_refuses_every_bogus_option_on_every_path(base, opt, value):
    kw = dict(base)
    kw[opt] = value
    with _raises(opt):
        clipcore.sce(X, T, **kw)


VENDI_BOGUS = {k: v for k, v in BOGUS.items() if k not in SCE_ONLY} | VENDI_ONLY


@pytest.mark.parametrize("base,opt,value", list(_cases(VENDI_PATHS, VENDI_BOGUS)))
def test_vendi_refuses_every_bogus_option_on_every_path(base, opt, value):
    kw = dict(base)
    kw[opt] = value
    if opt != "order" and "method" in kw and kw["method"] == "frobenius":
        kw.setdefault("order", 2)
    with _raises(opt):
        clipcore.vendi(X, **kw)


@pytest.mark.parametrize("opt", ["estimate", "landmark_method", "residual_sample", "key", "progress"])
def test_streamed_path_validates_options_it_does_not_use(files, opt):
    """A file input takes the streamed primal path: the Nyström-only options are still checked."""
    x, t = files
    with _raises(opt):
        clipcore.sce(x, t, **{opt: BOGUS[opt][0]})


def test_valid_calls_still_run_on_each_path():
    for path, base in SCE_PATHS.items():
        assert np.isfinite(clipcore.sce(X, T, **base).sce), path
    for path, base in VENDI_PATHS.items():
        kw = dict(base, order=2) if path == "frobenius" else base
        assert np.isfinite(clipcore.vendi(X, **kw).score), path


# ---------------------------------------------------------------- the key rule
def test_key_rule_int_none_and_jax_keys():
    assert O.resolve_key(None).seed == 0 and O.resolve_key(None).numpy == 0
    s = O.resolve_key(7)
    assert s.seed == 7 and s.numpy == 7
    np.testing.assert_array_equal(jax.random.key_data(s.key), jax.random.key_data(jax.random.key(7)))
    typed, raw = O.resolve_key(jax.random.key(3)), O.resolve_key(jax.random.PRNGKey(3))
    assert typed.seed is None and typed.numpy == raw.numpy  # the same key, typed or raw
    assert O.resolve_key(jax.random.key(4)).numpy != typed.numpy


def test_every_random_path_accepts_a_jax_key():
    key = jax.random.key(5)
    a = clipcore.sce(X, T, kernel="gaussian", sigma=4.0, landmarks=10, key=key)
    b = clipcore.sce(X, T, kernel="gaussian", sigma=4.0, landmarks=10, key=key)
    assert a.sce == b.sce  # deterministic in the key
    c = clipcore.sce(X, T, kernel="gaussian", sigma=1.0, rff_features=16, key=key)
    assert np.isfinite(c.sce)
    assert np.isfinite(clipcore.vendi(X, kernel="gaussian", sigma=4.0, landmarks=10, key=key).score)


def test_an_int_seed_and_its_key_give_the_same_rff_draw():
    a = clipcore.sce(X, T, kernel="gaussian", sigma=1.0, rff_features=16, key=3)
    b = clipcore.sce(X, T, kernel="gaussian", sigma=1.0, rff_features=16, key=jax.random.key(3))
    np.testing.assert_array_equal(a.omega, b.omega)


# ---------------------------------------------------------------- precision and groups
def test_precision_rule():
    assert O.resolve_precision(None).name == "float64"
    p = O.resolve_precision("float32")
    assert p.name == "float32" and np.dtype(p.acc) == np.float64
    with _raises("dtype"):
        O.resolve_precision("float16")


def test_numerics_rtol_default_is_dim_times_eps32():
    n = O.resolve_numerics()
    assert n.rtol_for(100) == 100 * np.finfo(np.float32).eps
    assert O.resolve_numerics(rtol=0.5).rtol_for(100) == 0.5
    assert O.resolve_numerics(ridge=0.1).mode == "ridge" and n.mode == "pinv"


def test_backend_rule():
    assert O.resolve_backend("jax") == "jax"
    assert O.resolve_backend("auto") in ("jax", "ffi")
    with _raises("backend"):
        O.resolve_backend("cuda")


def test_x64_scope_is_local():
    before = jax.config.jax_enable_x64
    with O.x64():
        assert jax.config.jax_enable_x64
    assert jax.config.jax_enable_x64 == before


# ---------------------------------------------------------------- precision follows the input
def test_precision_follows_the_input():
    """float64 rows stay float64; float32 (and half, read as float32) rows get float32 products with float64
    accumulation, except SCE through RFF in the primal form; dtype= overrides."""
    x64, t64 = X, T
    x32, t32 = X.astype(np.float32), T.astype(np.float32)
    assert clipcore.sce(x64, t64).dtype == "float64"
    assert clipcore.sce(x32, t32).dtype == "float32"
    assert clipcore.sce(X.astype(np.float16), T.astype(np.float16)).dtype == "float32"
    assert clipcore.sce(x32, t32, dtype="float64").dtype == "float64"
    assert clipcore.sce(x64, t64, dtype="float32").dtype == "float32"
    assert clipcore.vendi(x32).dtype == "float32" and clipcore.vendi(x64).dtype == "float64"
    rff = dict(kernel="gaussian", sigma=1.0, rff_features=8, progress=False)  # 2D = 16 < n: primal
    assert clipcore.sce(x32, t32, **rff).method == "primal/rff"
    assert clipcore.sce(x32, t32, **rff).dtype == "float64"  # the documented exception
    assert clipcore.vendi(x32, **rff).dtype == "float32"


@pytest.mark.parametrize("seed", [3, 4])
def test_rff_sce_keeps_float64_in_the_dual_form(seed):
    """SCE through RFF keeps float64 products in the dual form too (n = 40 < 2D = 400): on these seeds
    float32 products move SCE or the text score by ~1e-5 from the float64 NumPy reference, while the default
    (float64 whatever the input) meets it to 1e-9."""
    from scipy.spatial.distance import pdist
    rng = np.random.default_rng(seed)
    t = rng.standard_normal((40, 2)).astype(np.float32)
    x = (t + rng.standard_normal((40, 2))).astype(np.float32)
    om = rng.standard_normal((2, 200)) / np.median(pdist(t))
    want = ref.sce_primal(ref.rff_features(t, om), ref.rff_features(x, om), rtol=ref.default_rtol(400))
    got = clipcore.sce(x, t, kernel="gaussian", omega=om, progress=False)
    assert got.method == "dual/rff" and got.dtype == "float64"
    assert got.sce == pytest.approx(want.sce, rel=1e-9)
    assert got.text_score == pytest.approx(want.text_score, rel=1e-9)
    f32 = clipcore.sce(x, t, kernel="gaussian", omega=om, dtype="float32", progress=False)
    assert max(abs(f32.sce / want.sce - 1), abs(f32.text_score / want.text_score - 1)) > 5e-6  # why


def test_float32_paths_meet_1e6_on_the_reference_fixtures(ref_dir):
    """Every path that follows float32 input stays within 1e-6 (relative) of the float64 computation on
    the paper code's fixtures (float32 CLIP features, n = 500, d = 64): measured ≤ 2e-7."""
    import warnings

    x = np.load(ref_dir / "image_feats.npy")
    t = np.load(ref_dir / "text_feats.npy")
    assert x.dtype == np.float32
    om = {k: np.load(ref_dir / "omegas" / f"gauss_{k}_omegas.npy") for k in ("s0.5_D200", "s3.5_D2500")}
    cases = [dict(), dict(convention="clip-dissection"), dict(method="dual"),
             dict(kernel="gaussian", omega=om["s0.5_D200"], method="dual"),
             dict(kernel="gaussian", omega=om["s3.5_D2500"]),
             dict(kernel="gaussian", sigma=0.5), dict(kernel="gaussian", sigma=3.5, landmarks=200)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kw in cases:
            a = clipcore.sce(x, t, dtype="float64", progress=False, **kw)
            b = clipcore.sce(x, t, progress=False, **kw)
            # SCE through RFF keeps float64 (test_rff_sce_keeps_float64_in_the_dual_form: float32 products
            # stay within 1e-6 here, test_scores.test_float32_matches_float64_rff, but not on every set)
            assert b.dtype == ("float64" if "omega" in kw else "float32") or b.method.endswith("exact"), kw
            for s in ("sce", "text_score", "image_score"):
                assert getattr(b, s) == pytest.approx(getattr(a, s), rel=1e-6), (kw, s)
