"""Row-sharded scores under a device mesh (clipcore.sharding, ``mesh=``).

The main pytest process already initialised JAX with one CPU device, so the
sharded runs happen in a subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``; it prints its results
as JSON. Expected values: the float64 NumPy references
(tests/reference/sce_numpy.py, tests/reference/nystrom_numpy.py) computed
here from the same data, and the unsharded clipcore result of the same run.
The compiled programs of the public sharded entries are read from XLA's dump
(``--xla_dump_to``) in a second subprocess: rows never gathered, sums all-reduced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

try:
    from reference import nystrom_numpy as nref
    from reference import sce_numpy as ref
except ImportError:  # pragma: no cover
    from tests.reference import nystrom_numpy as nref
    from tests.reference import sce_numpy as ref

N, D_T, D_X, M, SIGMA, FREQ = 1001, 12, 10, 24, 4.0, 9


def run_devices(code: str, devices: int = 4, timeout: float = 240, xla_flags: str = "") -> dict:
    """Run ``code`` in a fresh Python with ``devices`` forced CPU devices; its last stdout line is JSON."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices} "
                        + xla_flags).strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, D_T))
    x = rng.normal(size=(n, D_X)) + 0.3 * t[:, :D_X]
    return t, x


def gaussian_data(n=N, seed=1):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, D_X))
    x = rng.normal(size=(n, D_X)) + 0.5 * t
    omega = rng.normal(size=(D_X, FREQ)) / SIGMA
    return t, x, omega


_SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import clipcore
from clipcore import sharding as S
from jax.sharding import AxisType

N, D_T, D_X, M, SIGMA, FREQ = {consts}
def data(n, seed):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, D_T)); x = rng.normal(size=(n, D_X)) + 0.3 * t[:, :D_X]
    return t, x
def gaussian_data(n, seed):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, D_X)); x = rng.normal(size=(n, D_X)) + 0.5 * t
    return t, x, rng.normal(size=(D_X, FREQ)) / SIGMA

t, x = data(N, 0)
gt, gx, omega = gaussian_data(N, 1)
L = gx[:M]
assert jax.device_count() == 4
meshes = {{
    "none": None, "1": 1, "2": 2, "4": 4,
    "explicit4": jax.make_mesh((4,), ("rows",), axis_types=(AxisType.Explicit,)),
    "auto4": jax.make_mesh((4,), ("rows",), axis_types=(AxisType.Auto,)),
    "2d": jax.make_mesh((2, 2), ("hosts", "devs")),
}}
def sce_out(r):
    return dict(sce=r.sce, text=r.text_score, image=r.image_score, comp=r.complement_eigenvalues.tolist(),
                textev=r.text_eigenvalues.tolist(), imageev=r.image_eigenvalues.tolist(), n=r.n, method=r.method)
ALL = ("sce_cos", "sce_cos_jax", "sce_colcos", "sce_rff", "sce_nys", "vendi_cos", "rke_rff", "rke_nys", "vendi_f32",
       "stream_cos", "stream_nys")
plan = {{"none": ALL, "1": ("sce_cos", "vendi_cos", "rke_nys"), "2": ALL[:1] + ALL[2:8] + ALL[9:], "4": ALL,
        "explicit4": ALL,
        "auto4": ("sce_cos", "sce_nys"), "2d": ("sce_cos",)}}
calls = {{
    "sce_cos": lambda m: sce_out(clipcore.sce(x, t, mesh=m)),
    "sce_cos_jax": lambda m: sce_out(clipcore.sce(x, t, mesh=m, backend="jax", block_size=100)),
    "sce_colcos": lambda m: sce_out(clipcore.sce(x, t, mesh=m, convention="clip-dissection")),
    "sce_rff": lambda m: sce_out(clipcore.sce(gx, gt, kernel="gaussian", sigma=SIGMA, omega=omega,
                                              rff_features=FREQ, mesh=m)),
    "sce_nys": lambda m: sce_out(clipcore.sce(gx, gt, kernel="gaussian", sigma=SIGMA, landmarks=L, mesh=m)),
    "vendi_cos": lambda m: dict(score=clipcore.vendi(x, mesh=m).score),
    "rke_rff": lambda m: dict(score=clipcore.rke(gx, kernel="gaussian", sigma=SIGMA, omega=omega,
                                                 rff_features=FREQ, mesh=m).score),
    "rke_nys": lambda m: (lambda r: dict(score=r.score, ev=r.eigenvalues.tolist(),
                                         est=r.nystrom.as_dict()["estimates"]))(
        clipcore.rke(gx, kernel="gaussian", sigma=SIGMA, landmarks=L, mesh=m)),
    "vendi_f32": lambda m: dict(score=clipcore.vendi(x, mesh=m, dtype="float32").score),
    # streamed inputs (an iterator of 300-row blocks, the last one ragged): each block sharded
    "stream_cos": lambda m: sce_out(clipcore.sce(((x[i:i + 300], t[i:i + 300]) for i in range(0, N, 300)),
                                                 mesh=m, block_size=300, progress=False)),
    "stream_nys": lambda m: sce_out(clipcore.sce(((gx[i:i + 300], gt[i:i + 300]) for i in range(0, N, 300)),
                                                 kernel="gaussian", sigma=SIGMA, landmarks=L, mesh=m,
                                                 block_size=300, progress=False)),
}}
out = {{name: {{key: calls[key](meshes[name]) for key in keys}} for name, keys in plan.items()}}

# fewer rows than devices: one device holds only a padding row
tiny_t, tiny_x = data(3, 5)
cov = S.joint_covariances(tiny_t, tiny_x, clipcore.kernels.FeatureMap("cosine"), mesh=S.resolve_mesh(4),
                          backend="ffi", feature_dtype=jnp.float64)
out["tiny"] = [np.asarray(c).tolist() for c in cov]

# errors
errs = {{}}
for label, call in (("too_many", lambda: clipcore.sce(x, t, mesh=8)),
                    ("exact", lambda: clipcore.vendi(gx, kernel="gaussian", sigma=SIGMA, mesh=2)),
                    ("dual", lambda: clipcore.sce(x, t, method="dual", mesh=2)),
                    ("type", lambda: clipcore.sce(x, t, mesh="four"))):
    try:
        call()
        errs[label] = None
    except ValueError as exc:
        errs[label] = str(exc)
out["errors"] = errs
print(json.dumps(out))
"""


# The compiled programs of the public sharded entries, read from XLA's dump of every program this process
# compiles (XLA_FLAGS=--xla_dump_to): the programs new after each call are the call's.
_HLO_SCRIPT = r"""
import glob, json, os
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from clipcore import nystrom as NY
from clipcore import sharding as S
from clipcore.kernels import FeatureMap

N, D_T, D_X, M, SIGMA, FREQ = {consts}
DUMP = {dump!r}
rng = np.random.default_rng(0)
t = rng.normal(size=(N, D_T)); x = rng.normal(size=(N, D_X)) + 0.3 * t[:, :D_X]
rng = np.random.default_rng(1)
gt = rng.normal(size=(N, D_X)); gx = rng.normal(size=(N, D_X)) + 0.5 * gt
omega = rng.normal(size=(D_X, FREQ)) / SIGMA
mesh = S.resolve_mesh(4)
f32 = lambda a: a.astype(np.float32)

def programs(call):
    before = set(glob.glob(os.path.join(DUMP, "*after_optimizations.txt")))
    jax.block_until_ready(call())
    new = sorted(set(glob.glob(os.path.join(DUMP, "*after_optimizations.txt"))) - before)
    assert new, "no program compiled"
    return [open(p).read() for p in new]

calls = {{
    "cos_ffi": lambda: S.joint_sums(f32(t), f32(x), FeatureMap("cosine"), mesh=mesh, block_size=250,
                                    feature_dtype=jnp.float32, backend="ffi")[0],
    "cos_jax": lambda: S.joint_sums(f32(t), f32(x), FeatureMap("cosine"), mesh=mesh, block_size=250,
                                    feature_dtype=jnp.float32, backend="jax")[0],
    "rff_ffi": lambda: S.single_sums(f32(gx), FeatureMap("rff", FREQ), jnp.asarray(omega, jnp.float32), mesh=mesh,
                                     block_size=250, feature_dtype=jnp.float32, backend="ffi")[0],
    "nys_ffi": lambda: S.nystrom_gram(f32(gt), NY.nystrom_map(gx[:M], SIGMA), mesh=mesh, images=f32(gx),
                                      block_size=250, backend="ffi", strategy="kernel")[0],
    # positive control: a program that does gather the sharded rows
    "gather_control": lambda: jax.jit(lambda a: 2.0 * a, out_shardings=jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec()))(S.shard_rows(mesh, f32(t)[:1000]).arrays[0]),
}}
out = {{}}
for key, call in calls.items():
    hs = programs(call)
    out[key] = dict(all_gather=any("all-gather" in h for h in hs),
                    all_reduce=sum(h.count("all-reduce-start") + h.count(" all-reduce(") for h in hs),
                    ffi=[name for name in ("clipcore_joint_gram_accumulate", "clipcore_gram_accumulate",
                                           "clipcore_kernel_accumulate_paired") if any(name in h for h in hs)])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def runs():
    consts = repr((N, D_T, D_X, M, SIGMA, FREQ))
    return run_devices(_SCRIPT.format(consts=consts))


MESHES = ("1", "2", "4", "explicit4", "auto4", "2d")


def meshes_with(runs, key, required=("2", "4")):
    names = [m for m in MESHES if key in runs[m]]
    assert set(required) <= set(names), (key, names)
    return names


def _close(a, b, rtol=1e-10, atol=1e-13):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol)


def _check_sce(res, spec: "ref.SchurSpectrum", rtol=1e-9):
    _close(res["sce"], ref.code_score(spec.complement), rtol)
    _close(res["text"], ref.code_score(spec.text), rtol)
    _close(res["image"], ref.renyi(spec.image, 1.0), rtol)
    k = len(res["comp"])
    _close(res["comp"], ref.fit_size(spec.complement, k), rtol, atol=1e-12)
    _close(res["imageev"], ref.fit_size(spec.image, k), rtol, atol=1e-12)


def test_sce_cosine_matches_reference_and_unsharded(runs):
    t, x = data()
    spec = ref.sce_primal(ref.cosine_features(t), ref.cosine_features(x))
    for key in ("sce_cos", "sce_cos_jax"):
        _check_sce(runs["none"][key], spec)
        for mesh in meshes_with(runs, key, ("4",) if key.endswith("jax") else ("1", "2", "4", "auto4", "2d")):
            got = runs[mesh][key]
            assert got["n"] == N and got["method"].startswith("primal")
            _check_sce(got, spec)
            for f in ("sce", "text", "image"):
                _close(got[f], runs["none"][key][f], rtol=1e-12)


def test_streamed_blocks_sharded_match_reference(runs):
    t, x = data()
    gt, gx, _ = gaussian_data()
    spec = ref.sce_primal(ref.cosine_features(t), ref.cosine_features(x))
    g = nref.joint_gram(gt, gx, gx[:M], SIGMA, float(np.finfo(np.float32).eps)) / N
    r = g.shape[0] // 2
    nys = ref.sce_primal(covs=(g[:r, :r], g[:r, r:], g[r:, r:]), rtol=r * ref.EPS32)
    for mesh in ["none"] + meshes_with(runs, "stream_cos"):
        got = runs[mesh]["stream_cos"]
        assert got["n"] == N
        _check_sce(got, spec)
        _close(got["sce"], runs["none"]["stream_cos"]["sce"], rtol=1e-12)
        got = runs[mesh]["stream_nys"]
        _close(got["comp"], nys.complement, 1e-8, atol=1e-12)
        _close(got["imageev"], nys.image, 1e-8, atol=1e-12)
        _close(got["sce"], runs["none"]["stream_nys"]["sce"], rtol=1e-11)


def test_sce_clip_dissection_matches_reference(runs):
    t, x = data()
    spec = ref.sce_primal(covs=ref.clip_dissection_covariances(t, x))
    for mesh in meshes_with(runs, "sce_colcos"):
        _check_sce(runs[mesh]["sce_colcos"], spec)
        _close(runs[mesh]["sce_colcos"]["sce"], runs["none"]["sce_colcos"]["sce"], rtol=1e-12)


def test_sce_rff_matches_reference(runs):
    t, x, omega = gaussian_data()
    spec = ref.sce_primal(ref.rff_features(t, omega), ref.rff_features(x, omega))
    for mesh in meshes_with(runs, "sce_rff"):
        _check_sce(runs[mesh]["sce_rff"], spec)
        _close(runs[mesh]["sce_rff"]["sce"], runs["none"]["sce_rff"]["sce"], rtol=1e-12)


def test_sce_nystrom_matches_reference(runs):
    t, x, _ = gaussian_data()
    L = x[:M]
    g = nref.joint_gram(t, x, L, SIGMA, float(np.finfo(np.float32).eps)) / N
    r = g.shape[0] // 2
    spec = ref.sce_primal(covs=(g[:r, :r], g[:r, r:], g[r:, r:]), rtol=r * ref.EPS32)
    for mesh in ["none"] + meshes_with(runs, "sce_nys", ("2", "4", "auto4")):
        got = runs[mesh]["sce_nys"]
        _close(got["comp"], spec.complement, 1e-8, atol=1e-12)
        _close(got["textev"], spec.text, 1e-8, atol=1e-12)
        _close(got["imageev"], spec.image, 1e-8, atol=1e-12)
        for f in ("sce", "text", "image"):  # the estimate's scores (with the residual tail) as unsharded
            _close(got[f], runs["none"]["sce_nys"][f], rtol=1e-11)


def test_vendi_and_rke_match_reference(runs):
    t, x = data()
    gt, gx, omega = gaussian_data()
    want = {
        "vendi_cos": ref.vendi_of_features(ref.cosine_features(x), 1.0),
        "rke_rff": ref.vendi_of_features(ref.rff_features(gx, omega), 2.0),
        "vendi_f32": ref.vendi_of_features(ref.cosine_features(x), 1.0),
    }
    c = nref.gram(gx, gx[:M], SIGMA, float(np.finfo(np.float32).eps)) / N
    for key, w in want.items():
        for mesh in ["none"] + meshes_with(runs, key, ("4",)):
            # float32 features, float64 sums: same to the float32 rounding of one feature
            _close(runs[mesh][key]["score"], w, rtol=1e-5 if key.endswith("f32") else 1e-10)
            _close(runs[mesh][key]["score"], runs["none"][key]["score"], rtol=1e-6 if key.endswith("f32") else 1e-12)
    for mesh in ["none"] + meshes_with(runs, "rke_nys", ("1", "2", "4")):
        o = runs[mesh]["rke_nys"]
        _close(o["ev"], ref.eigvals_desc(c), 1e-8, atol=1e-12)
        _close(o["score"], runs["none"]["rke_nys"]["score"], rtol=1e-12)
        for kind, est in o["est"].items():
            _close(est["score"], runs["none"]["rke_nys"]["est"][kind]["score"], rtol=1e-11)


def test_fewer_rows_than_devices(runs):
    t, x = data(3, 5)
    want = ref.covariances(ref.cosine_features(t), ref.cosine_features(x))
    for got, w in zip(runs["tiny"], want):
        _close(got, w, rtol=1e-12, atol=1e-14)


@pytest.fixture(scope="module")
def hlo(tmp_path_factory):
    dump = str(tmp_path_factory.mktemp("xla_dump"))
    consts = repr((N, D_T, D_X, M, SIGMA, FREQ))
    return run_devices(_HLO_SCRIPT.format(consts=consts, dump=dump), xla_flags=f"--xla_dump_to={dump}")


@pytest.mark.parametrize("program", ["cos_ffi", "cos_jax", "rff_ffi", "nys_ffi"])
def test_compiled_program_reduces_sums_and_never_gathers_rows(hlo, program):
    h = hlo[program]
    assert not h["all_gather"], "the sharded rows must not be gathered"
    assert h["all_reduce"] >= 1, "the D×D sums are added with an all-reduce (psum)"
    if program.endswith("ffi"):
        assert h["ffi"], "the compiled FFI accumulation runs per shard"


def test_the_program_reader_sees_a_gather(hlo):
    """Positive control of the reader above: a program that replicates row-sharded data holds an all-gather."""
    assert hlo["gather_control"]["all_gather"]


def test_mesh_errors_name_the_argument(runs):
    e = runs["errors"]
    assert e["too_many"] and "mesh" in e["too_many"] and "8" in e["too_many"]
    assert e["exact"] and e["exact"].startswith("mesh:")
    assert e["dual"] and e["dual"].startswith("mesh:")
    assert e["type"] and e["type"].startswith("mesh:")


def test_cli_devices_flag_matches_one_device(tmp_path):
    """``clipcore score --devices 2`` (2 forced CPU devices) gives the one-device scores; too many devices is one
    clear error line (exit 2)."""
    import clipcore

    t, x = data(N, 7)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip())
    base = [sys.executable, "-m", "clipcore.cli", "score", "--images", str(tmp_path / "x.npy"), "--texts",
            str(tmp_path / "t.npy"), "--quiet"]
    ok = subprocess.run(base + ["--devices", "2", "--json", str(tmp_path / "out.json")], env=env,
                        capture_output=True, text=True, timeout=240)
    assert ok.returncode == 0, ok.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())
    one = clipcore.sce(x, t)
    _close(got["scores"]["sce"], one.sce, rtol=1e-9)
    _close(got["scores"]["text_score"], one.text_score, rtol=1e-9)
    _check_sce({"sce": got["scores"]["sce"], "text": got["scores"]["text_score"],
                "image": got["scores"]["image_score"], "comp": [], "imageev": []},
               ref.sce_primal(ref.cosine_features(t), ref.cosine_features(x)))
    bad = subprocess.run(base + ["--devices", "3"], env=env, capture_output=True, text=True, timeout=240)
    assert bad.returncode == 2
    assert "mesh: asked for 3 devices but JAX sees 2" in bad.stderr and bad.stderr.count("\n") == 1


# ------------------------------------------------------------------ in this (one-device) process
def test_resolve_mesh_and_shard_rows_on_one_device():
    import jax

    from clipcore import sharding as S

    assert S.resolve_mesh(None) is None
    mesh = S.resolve_mesh(1)
    assert mesh.size == 1 and tuple(mesh.axis_names) == (S.AXIS,)
    assert S.resolve_mesh(mesh) is mesh
    many = len(jax.local_devices()) + 1
    for bad, msg in ((0, "mesh: expected a number of devices >= 1, got 0"),
                     (many, f"mesh: asked for {many} devices but JAX sees {many - 1}"),
                     ("four", "mesh: expected a jax.sharding.Mesh or a number of devices, got str"),
                     (True, "mesh: expected a jax.sharding.Mesh or a number of devices, got bool")):
        with pytest.raises(ValueError, match=msg):
            S.resolve_mesh(bad)
    t, x = data(11, 2)
    sh = S.shard_rows(mesh, t, x)
    assert not sh.padded and sh.n == 11 and sh.per_device == 11 and len(sh.operands) == 2
    np.testing.assert_array_equal(np.asarray(sh.arrays[1]), x)


def test_sharded_sums_on_one_device_equal_the_unsharded_ones():
    import jax.numpy as jnp

    from clipcore import covariance as C
    from clipcore import nystrom as NY
    from clipcore import sharding as S
    from clipcore.kernels import FeatureMap

    mesh = S.resolve_mesh(1)
    t, x = data(301, 3)
    a = S.joint_covariances(t, x, FeatureMap("cosine"), mesh=mesh, feature_dtype=jnp.float64, block_size=77)
    b = C.joint_covariances(t, x, FeatureMap("cosine"), feature_dtype=jnp.float64, block_size=77)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(S.feature_covariance(x, FeatureMap("cosine"), mesh=mesh, feature_dtype=jnp.float64),
                               C.feature_covariance(x, FeatureMap("cosine"), feature_dtype=jnp.float64),
                               rtol=1e-13, atol=1e-15)
    gt, gx, _ = gaussian_data(301, 4)
    nm = NY.nystrom_map(gx[:M], SIGMA)
    g, n = S.nystrom_gram(gt, nm, mesh=mesh, images=gx, backend="jax")
    assert n == 301
    np.testing.assert_allclose(g, NY.nystrom_joint_gram(gt, gx, nm, backend="jax"), rtol=1e-11, atol=1e-12)
    with pytest.raises(ValueError, match="images: shape"):
        S.nystrom_gram(gt, nm, mesh=mesh, images=gx[:10])
