"""Conditional / Information Vendi (clipcore.conditional, clipcore.product_kernel; issue 19).

Against the authors' outputs (tests/data/reference/cond_vendi: mjalali/conditional-vendi run in float64,
14 cases) to 1e-9, and against the independent float64 NumPy reference (tests/reference/cond_vendi_numpy.py)
on other data, orders and truncations; every path (dual, Frobenius, tensor, Nyström, RFF, product features)
against the exact dual; the approximations converge as m / D grow; streamed (files, iterators) equals in
memory; sharded (4 forced CPU devices, subprocess) equals one device; per-group views; bad inputs refused
with the argument named.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import clipcore
from clipcore.conditional import ConditionalVendiResult, conditional_vendi
from clipcore.entropy import Spectrum
from clipcore.groups import per_group
from clipcore.product_kernel import conditional_entropies, spectrum_entropy, truncated_spectrum
from reference import cond_vendi_numpy as ref

pytestmark = pytest.mark.filterwarnings("ignore::clipcore._validate.DimensionMismatchWarning")

FIXTURES = pathlib.Path(__file__).parent / "data" / "reference" / "cond_vendi"
CASES = json.loads((FIXTURES / "reference_scores.json").read_text())["cases"]
INF = float("inf")
KEYS = {"H_X": "image_entropy", "H_T": "text_entropy", "H_XT": "joint_entropy", "H_X_given_T": "conditional_entropy",
        "I_X_T": "mutual_information", "cond_vendi": "conditional_vendi", "info_vendi": "information_vendi"}


def fixture_rows():
    return np.load(FIXTURES / "images.npy"), np.load(FIXTURES / "texts.npy")


def pairs(n=500, dx=6, dt=5, seed=0, clusters=8):
    """Prompts in clusters, images = their prompt's signal + noise (x depends on t)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dt)) * 2.0
    t = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dt))
    x = np.concatenate([t, rng.normal(size=(n, dx - dt))], 1) + 0.5 * rng.normal(size=(n, dx))
    return x, t


def reference(x, t, **kw):
    return ref.entropies(x, t, **kw)


def assert_matches(r: ConditionalVendiResult, want: dict, tol: float):
    for k, attr in KEYS.items():
        assert getattr(r, attr) == pytest.approx(want[k], abs=tol, rel=tol), attr


# ------------------------------------------------------------------ the authors' outputs
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['kernel']}-order{c['order']}-top{c['top_k']}")
def test_authors_outputs(case):
    x, t = fixture_rows()
    order = INF if case["order"] == "inf" else float(case["order"])
    sigma = None if case["kernel"] == "cosine" else (case["sigma_images"], case["sigma_texts"])
    r = conditional_vendi(x, t, kernel=case["kernel"], sigma=sigma, order=order, top_k=case["top_k"])
    for k, attr in KEYS.items():
        assert abs(getattr(r, attr) - case["values"][k]) <= 1e-9 * max(1.0, abs(case["values"][k])), attr
    # the pure jit-able form gives the same entropies
    e = conditional_entropies(x, t, kernel=case["kernel"], sigma_x=None if sigma is None else sigma[0],
                              sigma_t=None if sigma is None else sigma[1], order=order, top_k=case["top_k"])
    assert float(e.conditional) == pytest.approx(case["values"]["H_X_given_T"], abs=1e-9)
    assert float(e.mutual) == pytest.approx(case["values"]["I_X_T"], abs=1e-9)


def test_numpy_sigma_is_honoured():
    """The authors' code ignores a NumPy-scalar σ (falls back to σ_X for the texts); clipcore does not."""
    x, t = fixture_rows()
    a = conditional_vendi(x, t, sigma=(np.float64(0.7), np.float32(0.5)))
    b = conditional_vendi(x, t, sigma=(0.7, float(np.float32(0.5))))
    assert a.conditional_entropy == b.conditional_entropy and a.sigma_texts == pytest.approx(0.5)


# ------------------------------------------------------------------ the NumPy reference
@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
@pytest.mark.parametrize("order", [0.5, 1.0, 2.0, 3.0, INF])
@pytest.mark.parametrize("top_k", [None, 7])
def test_numpy_reference(kernel, order, top_k):
    x, t = pairs(300, dx=7, dt=4, seed=1)
    sig = dict(sigma_x=2.1, sigma_t=1.3) if kernel == "gaussian" else {}
    want = reference(x, t, kernel=kernel, order=order, top_k=top_k, rank_cutoff=order < 1, **sig)
    r = conditional_vendi(x, t, kernel=kernel, sigma=(2.1, 1.3) if sig else None, order=order, top_k=top_k)
    assert_matches(r, want, 1e-9)
    e = conditional_entropies(x, t, kernel=kernel, order=order, top_k=top_k, **sig)
    assert float(e.joint) == pytest.approx(want["H_XT"], abs=1e-9)


@pytest.mark.parametrize("order", [0.5, 1.0, 2.0])
def test_truncation_spreads_a_real_missing_mass_but_not_rounding(order):
    """A rank-4 trace-one spectrum whose sum misses 1 by rounding (3e-16), truncated to k = 7: the missing mass
    counts as 0 (spread over the three zeros it would add 3·(4e-17)^½ ≈ 2e-8 at α = ½, as the tensor path's
    rounding did on the rank-4 cosine texts of test_numpy_reference); a real missing mass (1e-3) is spread.
    Both against the reference's renyi of the top-k by hand."""
    exact = np.array([0.4, 0.3, 0.2, 0.1])
    noisy = np.concatenate([exact - np.array([1e-16, 1e-16, 5e-17, 5e-17]), np.zeros(296)])
    real = np.concatenate([exact * (1 - 1e-3), np.full(296, 1e-3 / 296)])
    want_exact = ref.renyi(np.concatenate([exact, np.zeros(3)]), order)
    top = np.sort(real)[::-1][:7]
    want_real = ref.renyi(top + (1.0 - top.sum()) / 7, order)
    for eigs, want in ((noisy, want_exact), (real, want_real)):
        assert float(spectrum_entropy(jax.numpy.asarray(eigs), order, top_k=7)) == pytest.approx(want, rel=1e-13)
        host = truncated_spectrum(Spectrum(eigs), 7, eigs.size)
        assert ref.renyi(host, order) == pytest.approx(want, rel=1e-13)


def test_sigma_heuristic_and_single_number():
    x, t = pairs(400, seed=2)
    r = conditional_vendi(x, t)
    assert (r.sigma_images, r.sigma_texts) == (clipcore.median_sigma(x), clipcore.median_sigma(t))
    assert_matches(r, reference(x, t, sigma_x=r.sigma_images, sigma_t=r.sigma_texts), 1e-9)
    s = conditional_vendi(x, t, sigma=1.7)
    assert (s.sigma_images, s.sigma_texts) == (1.7, 1.7)
    assert_matches(s, reference(x, t, sigma_x=1.7, sigma_t=1.7), 1e-9)


def test_float32_agrees_with_float64():
    x, t = pairs(400, seed=3)
    a = conditional_vendi(x, t, sigma=(2.0, 1.5))
    b = conditional_vendi(x.astype(np.float32), t.astype(np.float32), sigma=(2.0, 1.5), dtype="float32")
    assert b.dtype == "float32"
    assert b.conditional_entropy == pytest.approx(a.conditional_entropy, abs=1e-5)
    assert b.mutual_information == pytest.approx(a.mutual_information, abs=1e-5)


def test_pure_form_is_differentiable_and_jits():
    x, t = pairs(60, seed=4)
    f = jax.jit(lambda s: conditional_entropies(x, t, sigma_x=s, sigma_t=1.0).conditional)
    g = jax.grad(lambda s: conditional_entropies(x, t, sigma_x=s, sigma_t=1.0, order=2.0).mutual)(1.5)
    eps = 1e-6
    fd = [reference(x, t, sigma_x=1.5 + e, sigma_t=1.0, order=2)["I_X_T"] for e in (eps, -eps)]
    assert float(g) == pytest.approx((fd[0] - fd[1]) / (2 * eps), rel=1e-6)
    assert float(f(1.5)) == pytest.approx(reference(x, t, sigma_x=1.5, sigma_t=1.0)["H_X_given_T"], abs=1e-9)


# ------------------------------------------------------------------ every path against the exact dual
def test_exact_paths_equal_the_dual():
    x, t = pairs(600, dx=6, dt=6, seed=5)
    g = dict(sigma=(2.0, 1.5))
    dual2 = conditional_vendi(x, t, order=2, **g)
    frob = conditional_vendi(x, t, order=2, method="frobenius", **g)
    assert (dual2.method, frob.method) == ("dual", "frobenius") and frob.joint_eigenvalues.size == 0
    assert_matches(frob, reference(x, t, sigma_x=2.0, sigma_t=1.5, order=2), 1e-10)
    assert frob.conditional_entropy == pytest.approx(dual2.conditional_entropy, abs=1e-10)
    jax_frob = conditional_vendi(x, t, order=2, method="frobenius", backend="jax", **g)
    assert jax_frob.mutual_information == pytest.approx(frob.mutual_information, abs=1e-10)
    c_dual = conditional_vendi(x, t, kernel="cosine")  # 36 ≤ n: the exact tensor features
    assert c_dual.method == "tensor" and c_dual.methods["joint"] == "primal/tensor"
    assert_matches(c_dual, reference(x, t, kernel="cosine"), 1e-9)
    c_dual = conditional_vendi(x, t, kernel="cosine", method="dual", order=3)
    assert c_dual.method == "dual"
    assert_matches(c_dual, reference(x, t, kernel="cosine", order=3), 1e-9)
    c_frob = conditional_vendi(x, t, kernel="cosine", order=2, method="frobenius")
    assert_matches(c_frob, reference(x, t, kernel="cosine", order=2), 1e-10)


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
def test_order_inf_by_lanczos_above_512_rows(kernel):
    """The exact order ∞ needs λ_max only: Lanczos (ARPACK) on the n×n densities above 512 rows."""
    x, t = pairs(700, dx=9, dt=8, seed=15)
    sig = dict(sigma_x=2.0, sigma_t=1.5) if kernel == "gaussian" else {}
    r = conditional_vendi(x, t, kernel=kernel, sigma=(2.0, 1.5) if sig else None, order=INF, method="dual")
    assert r.joint_eigenvalues.shape == (1,)
    assert_matches(r, reference(x, t, kernel=kernel, order=INF, **sig), 1e-10)


def _err(r, want):
    return max(abs(r.conditional_entropy - want["H_X_given_T"]), abs(r.mutual_information - want["I_X_T"]))


def test_nystrom_converges_to_the_exact_value():
    x, t = pairs(800, seed=6)
    want = reference(x, t, sigma_x=2.0, sigma_t=1.5)
    runs = [conditional_vendi(x, t, sigma=(2.0, 1.5), landmarks=m) for m in (40, 160, 640)]
    errs = [_err(r, want) for r in runs]
    assert errs[2] < errs[1] < errs[0] and errs[2] < 0.01
    r = runs[-1]
    assert r.method == "nystrom" and set(r.nystrom) == {"joint", "images", "texts"}
    assert set(r.estimates) == {"residual", "missing-mass", "renormalised"} and r.estimate == "residual"
    assert r.estimates["residual"]["conditional_entropy"] == r.conditional_entropy
    full = conditional_vendi(x, t, sigma=(2.0, 1.5), landmarks=800, order=3)  # every row a landmark: exact
    assert _err(full, reference(x, t, sigma_x=2.0, sigma_t=1.5, order=3)) < 1e-6


# the cosine case (6000 product features, 28 s) runs under -m slow: CI's time limit (bench/bench_conditional.py
# --part accuracy measures the same convergence at n = 10⁴)
@pytest.mark.parametrize("kernel,sizes", [("gaussian", (30, 300, 3000)),
                                          pytest.param("cosine", (60, 600, 6000), marks=pytest.mark.slow)])
def test_random_features_converge_to_the_exact_value(kernel, sizes):
    x, t = pairs(400, dx=5, dt=5, seed=7)
    sig = (2.0, 1.5) if kernel == "gaussian" else None
    want = reference(x, t, kernel=kernel, **(dict(sigma_x=2.0, sigma_t=1.5) if sig else {}), order=2)
    errs = [np.mean([_err(conditional_vendi(x, t, kernel=kernel, sigma=sig, rff_features=D, order=2, key=k), want)
                     for k in range(3)]) for D in sizes]
    assert errs[2] < errs[1] < errs[0] and errs[2] < 0.05
    r = conditional_vendi(x, t, kernel=kernel, sigma=sig, rff_features=sizes[0])
    assert r.method == ("rff" if kernel == "gaussian" else "product-features")


def test_top_k_applies_to_all_three_at_every_order():
    x, t = pairs(300, seed=8)
    for order in (1.0, 2.0, INF):
        want = reference(x, t, sigma_x=2.0, sigma_t=1.5, order=order, top_k=20)
        assert_matches(conditional_vendi(x, t, sigma=(2.0, 1.5), order=order, top_k=20), want, 1e-9)
    r = conditional_vendi(x, t, sigma=(2.0, 1.5), landmarks=100, top_k=20)  # on the Nyström spectra too
    assert r.conditional_entropy == pytest.approx(reference(x, t, sigma_x=2.0, sigma_t=1.5, top_k=20)["H_X_given_T"],
                                                  abs=0.05)


# ------------------------------------------------------------------ input kinds
@pytest.mark.parametrize("kw", [dict(sigma=(2.0, 1.5), landmarks=60), dict(sigma=(2.0, 1.5), order=2, method="frobenius"),
                                dict(sigma=(2.0, 1.5), rff_features=80, order=INF), dict(kernel="cosine"),
                                dict(kernel="cosine", rff_features=300, order=3), dict(sigma=(2.0, 1.5))],
                         ids=["nystrom", "frobenius", "rff", "tensor", "product-features", "dual"])
def test_streamed_equals_in_memory(kw, tmp_path, monkeypatch):
    x, t = pairs(1200, seed=9)
    mem = conditional_vendi(x, t, **kw)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    blocks = [(x[i:i + 250], t[i:i + 250]) for i in range(0, 1200, 250)]
    if mem.method != "dual":
        monkeypatch.setattr("clipcore._pipeline.inputs.IN_MEMORY_ROWS", 100)  # files and spools stream
    files = conditional_vendi(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"), block_size=300, **kw)
    it = conditional_vendi(iter(blocks), **kw)
    for r in (files, it):
        assert r.method == mem.method and r.n == 1200
        assert r.conditional_entropy == pytest.approx(mem.conditional_entropy, abs=1e-9)
        assert r.mutual_information == pytest.approx(mem.mutual_information, abs=1e-9)


_SHARDED = r"""
import json, warnings
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
warnings.simplefilter("ignore")
from clipcore.conditional import conditional_vendi
rng = np.random.default_rng(0)
t = rng.normal(size=(1001, 6)); x = t + 0.5 * rng.normal(size=(1001, 6))
out = {}
for name, kw in [("tensor", dict(kernel="cosine")), ("product", dict(kernel="cosine", rff_features=200)),
                 ("nystrom", dict(sigma=(3.0, 2.0), landmarks=48)), ("rff", dict(sigma=(3.0, 2.0), rff_features=40))]:
    a, b = conditional_vendi(x, t, **kw), conditional_vendi(x, t, mesh=4, **kw)
    out[name] = [a.conditional_entropy, b.conditional_entropy, a.mutual_information, b.mutual_information,
                 a.method, b.method, len(jax.devices())]
print(json.dumps(out))
"""


def test_sharded_equals_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_SHARDED)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (c1, c4, m1, m4, p1, p4, devices) in out.items():
        assert devices == 4 and p1 == p4, name
        assert c4 == pytest.approx(c1, abs=1e-10) and m4 == pytest.approx(m1, abs=1e-10), name


# ------------------------------------------------------------------ per-group views
def test_groups_score_each_group_with_the_pooled_sigmas():
    x, t = pairs(240, seed=10)
    groups = np.repeat(["a", "b", "c"], 80)
    r = conditional_vendi(x, t, groups=groups, order=2)
    assert r.groups.ids == ["a", "b", "c"] and r.groups.sizes.tolist() == [80, 80, 80]
    for k, g in enumerate("abc"):
        sel = groups == g
        want = reference(x[sel], t[sel], sigma_x=r.sigma_images, sigma_t=r.sigma_texts, order=2)
        assert r.groups.conditional_vendi[k] == pytest.approx(want["cond_vendi"], rel=1e-9)
        assert r.groups.mutual_information[k] == pytest.approx(want["I_X_T"], abs=1e-9)
    assert r.groups.mean_conditional_vendi == pytest.approx(r.groups.conditional_vendi.mean())
    assert r.conditional_vendi == conditional_vendi(x, t, order=2).conditional_vendi  # the pooled score unchanged
    json.dumps(r.summary())
    small = conditional_vendi(x, t, groups=np.arange(240) % 60, top_k=50, kernel="cosine")  # top_k capped at 4
    assert len(small.groups.ids) == 60 and np.all(np.isfinite(small.groups.conditional_entropy))


def test_per_group_for_vendi():
    x, _ = pairs(200, seed=11)
    groups = np.arange(200) % 4
    out = per_group(clipcore.vendi, x, groups, kernel="gaussian", order=2.0)
    assert out.pooled.sigma == clipcore.median_sigma(x)
    for k in range(4):
        want = clipcore.vendi(x[groups == k], kernel="gaussian", sigma=out.pooled.sigma, order=2.0)
        assert out.scores[k] == pytest.approx(float(want), rel=1e-12)
    assert out.mean == pytest.approx(out.scores.mean()) and out.sizes.tolist() == [50] * 4
    json.dumps(out.summary())


# ------------------------------------------------------------------ the result
def test_result_repr_and_summary():
    x, t = pairs(200, seed=12)
    r = conditional_vendi(x, t, sigma=(2.0, 1.5), order=INF, top_k=10)
    text = repr(r)
    assert "\n" not in text and text.startswith("ConditionalVendiResult(conditional_vendi=") and "top_k=10" in text
    s = json.loads(json.dumps(r.summary()))
    assert s["order"] == "inf" and s["kernel"] == "gaussian" and s["methods"]["joint"] == "dual/exact"
    assert "joint_eigenvalues" not in s and r.joint_eigenvalues.shape == (200,)
    assert r.conditional_vendi == pytest.approx(np.exp(r.joint_entropy - r.text_entropy))
    assert r.information_vendi == pytest.approx(np.exp(r.image_entropy + r.text_entropy - r.joint_entropy))
    assert clipcore.conditional.conditional_vendi is conditional_vendi


# ------------------------------------------------------------------ bad inputs
def _bad():
    x, t = pairs(50, seed=13)
    xn = x.copy()
    xn[7, 2] = np.nan
    tn = t.copy()
    tn[3, 0] = np.inf
    return [
        (dict(images=x, texts=t[:-1]), "texts"),
        (dict(images=x, texts=None), "texts"),
        (dict(images=x, texts=t, sigma=0.0), "sigma"),
        (dict(images=x, texts=t, sigma=-1.0), "sigma"),
        (dict(images=x, texts=t, sigma=(1.0, 0.0)), "sigma"),
        (dict(images=x, texts=t, sigma=(1.0, 2.0, 3.0)), "sigma"),
        (dict(images=x, texts=t, kernel="cosine", sigma=1.0), "sigma"),
        (dict(images=x, texts=t, order=0), "order"),
        (dict(images=x, texts=t, order=-2), "order"),
        (dict(images=x, texts=t, order="two"), "order"),
        (dict(images=x, texts=t, top_k=51), "top_k"),
        (dict(images=x, texts=t, top_k=0), "top_k"),
        (dict(images=xn, texts=t), "images"),
        (dict(images=x, texts=tn), "texts"),
        (dict(images=x, texts=t, kernel="laplace"), "kernel"),
        (dict(images=x, texts=t, method="svd"), "method"),
        (dict(images=x, texts=t, groups=np.arange(49)), "groups"),
        (dict(images=x, texts=t, groups=np.where(np.arange(50) == 4, np.nan, 1.0)), "groups"),
        (dict(images=x, texts=t, kernel="cosine", landmarks=10), "landmarks"),
        (dict(images=x, texts=t, order=2, top_k=5, method="frobenius"), "top_k"),
        (dict(images=x, texts=t, rff_features=0), "rff_features"),
    ]


@pytest.mark.parametrize("i", range(21))
def test_bad_inputs_name_the_argument(i):
    kw, name = _bad()[i]
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        conditional_vendi(**kw)


def test_bad_file_rows_are_named_by_shard_and_row(tmp_path, monkeypatch):
    x, t = pairs(400, seed=14)
    t[333, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    monkeypatch.setattr("clipcore._pipeline.inputs.IN_MEMORY_ROWS", 100)
    with pytest.raises(ValueError, match="texts.*333"):
        conditional_vendi(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"), sigma=1.0, order=2, method="frobenius")
