"""Multi-process scoring (clipcore.distributed): 2 processes on 127.0.0.1 over shards on disk.

Each process is a fresh Python (gloo CPU collectives set in that process
only); process 0 writes the result as JSON. Expected values: the
single-process clipcore result over the same files (computed here) and the
float64 NumPy reference (tests/reference/sce_numpy.py) of the same rows.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import clipcore
from clipcore import distributed as dist

try:
    from reference import sce_numpy as ref
except ImportError:  # pragma: no cover
    from tests.reference import sce_numpy as ref

N, D, SHARD_ROWS, SIGMA = 1001, 8, 230, 3.0

_WORKER = r"""
import json, os, sys
import jax
pid, port, shards, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
SIGMA = float(sys.argv[5])
from clipcore import distributed as dist
info = dist.initialize(f"127.0.0.1:{port}", 2, pid, initialization_timeout=30, heartbeat_timeout=5,
                       shutdown_timeout=5, cpu_collectives="gloo")
assert info == (pid, 2), info
if os.environ.get("DIE_AT_REDUCE"):  # this process dies just before its k-th reduction
    calls, original = [0], dist.DistributedSource.reduce_sums
    def die(self, sums, n):
        calls[0] += 1
        if calls[0] == int(os.environ["DIE_AT_REDUCE"]):
            os._exit(3)
        return original(self, sums, n)
    dist.DistributedSource.reduce_sums = die
src = dist.distributed_source(shards)
kw = {"mesh": int(os.environ["MESH"])} if os.environ.get("MESH") else {}
res = {"shards": src.shards, "local_rows": src.local.n, "devices": [jax.local_device_count(), jax.device_count()]}
if kw:  # a mesh must hold this process's devices only: more than it has, or the job's global devices, are refused
    for bad in (kw["mesh"] + 1, jax.make_mesh((jax.device_count(),), ("rows",), devices=jax.devices())):
        try:
            dist.sce(shards, progress=False, mesh=bad)
        except ValueError as e:
            res.setdefault("mesh_errors", []).append(str(e))
# float32 shards: computed in float64 here and in the single-process runs compared with (float32 block products
# would round differently for other splits of the rows)
r = dist.sce(shards, progress=False, dtype="float64", **kw)
res["sce_cos"] = [r.sce, r.text_score, r.image_score, r.n]
res["dtypes"] = [r.dtype]
r = dist.sce(shards, kernel="gaussian", sigma=SIGMA, rff_features=6, key=0, progress=False, dtype="float64", **kw)
res["sce_rff"] = [r.sce, r.text_score, r.image_score, r.n]
res["dtypes"].append(r.dtype)
r = dist.vendi(shards, kernel="gaussian", sigma=SIGMA, landmarks=12, progress=False, dtype="float64", **kw)
res["vendi_nys"] = [r.score, r.n]
res["dtypes"].append(r.dtype)
if dist.is_writer():
    with open(out, "w") as f:
        json.dump(res, f)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(pid, port, shards, out, env_extra=None):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-c", _WORKER, str(pid), str(port), str(shards), str(out), str(SIGMA)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(procs, timeout):
    outs = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a distributed worker hung (killed after the test's timeout)")
        outs.append((p.returncode, e))
    return outs


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    rng = np.random.default_rng(3)
    t = rng.normal(size=(N, D)).astype(np.float32)
    x = (rng.normal(size=(N, D)) + 0.4 * t).astype(np.float32)
    d = tmp_path_factory.mktemp("shards")
    clipcore.write_shards(d, x, t, shard_rows=SHARD_ROWS)
    return d, x.astype(np.float64), t.astype(np.float64)


def test_assign_shards_round_robin():
    assert dist.assign_shards(5, 2, 0) == [0, 2, 4]
    assert dist.assign_shards(5, 2, 1) == [1, 3]
    assert sorted(dist.assign_shards(7, 3, 0) + dist.assign_shards(7, 3, 1) + dist.assign_shards(7, 3, 2)) \
        == list(range(7))
    with pytest.raises(ValueError, match="shard file"):
        dist.assign_shards(1, 2, 0)


def test_initialize_validates_arguments():
    with pytest.raises(ValueError, match="process_id"):
        dist.initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="num_processes"):
        dist.initialize("127.0.0.1:1234", 0, 0)
    with pytest.raises(ValueError, match="coordinator_address"):
        dist.initialize("localhost", 2, 0)


def test_single_process_source_equals_plain_streaming(shards):
    d, x, t = shards
    got = dist.sce(d, progress=False)
    want = ref.sce_primal(ref.cosine_features(t), ref.cosine_features(x))
    np.testing.assert_allclose(got.sce, ref.code_score(want.complement), rtol=1e-6)
    assert got.n == N and dist.process_info() == (0, 1)


def test_npz_shard_directories_are_scored(tmp_path):
    """A plain directory of .npz shards (np.savez, np.savez_compressed), which clipcore.sce streams, is listed
    by the same shard lister: distributed.sce / vendi give the float64 reference's numbers."""
    rng = np.random.default_rng(5)
    t = rng.normal(size=(300, 6))
    x = rng.normal(size=(300, 6)) + 0.5 * t
    img, txt = tmp_path / "img", tmp_path / "txt"
    img.mkdir()
    txt.mkdir()
    for k, (a, b) in enumerate([(0, 120), (120, 300)]):
        np.savez(img / f"x-{k}.npz", x[a:b])
        np.savez_compressed(txt / f"t-{k}.npz", t[a:b])
    pairs = dist.shard_files(str(img), str(txt))
    assert [(os.path.basename(a), os.path.basename(b)) for a, b in pairs] == [("x-0.npz", "t-0.npz"),
                                                                            ("x-1.npz", "t-1.npz")]
    got = dist.sce(str(img), str(txt), progress=False)
    want = ref.sce_primal(ref.cosine_features(t), ref.cosine_features(x))
    np.testing.assert_allclose(got.sce, ref.code_score(want.complement), rtol=1e-6)
    assert got.n == 300
    np.testing.assert_allclose(dist.vendi(str(img), progress=False).score,
                               ref.vendi_of_features(ref.cosine_features(x)), rtol=1e-6)


def test_manifest_without_texts_gives_image_shards(shards, tmp_path):
    """A shard directory whose manifest has an images column only (clipcore embed of images alone) is one
    set: shard_files pairs its images with no texts, and vendi scores them."""
    d, x, _ = shards
    man = json.loads((d / "manifest.json").read_text())
    only = tmp_path / "only"
    only.mkdir()
    for s in man["shards"]:
        os.symlink(d / s["images"], only / s["images"])
        del s["texts"]
    (only / "manifest.json").write_text(json.dumps(man))
    pairs = dist.shard_files(str(only))
    assert [os.path.basename(a) for a, _ in pairs] == [f"images-{k:05d}.npy" for k in range(5)]
    assert all(b is None for _, b in pairs)
    got = dist.vendi(str(only), progress=False)
    np.testing.assert_allclose(got.score, ref.vendi_of_features(ref.cosine_features(x)),
                               rtol=1e-6)


@pytest.mark.parametrize("devices", [1, 2], ids=["1-device-each", "2-devices-each"])
def test_two_processes_match_single_process(shards, tmp_path, devices):
    """2 processes; with 2 devices each (4 CPU devices in the job), every block's rows are also sharded over the
    process's own devices (mesh=2) before the sums are added across the processes."""
    d, x, t = shards
    out = tmp_path / "result.json"
    port = _free_port()
    extra = {} if devices == 1 else {"MESH": "2", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    procs = [_start(pid, port, d, out, extra) for pid in (0, 1)]
    for rc, err in _wait(procs, timeout=180):
        assert rc == 0, err[-3000:]
    res = json.loads(out.read_text())
    assert res["devices"] == [devices, 2 * devices]
    if devices == 2:
        assert len(res["mesh_errors"]) == 2
        assert "asked for 3 devices but JAX sees 2 on process" in res["mesh_errors"][0]
        assert "holds devices of processes [1]" in res["mesh_errors"][1] or \
            "holds devices of processes [0]" in res["mesh_errors"][1]
    assert res["shards"] == [0, 2, 4] and res["local_rows"] == 2 * SHARD_ROWS + (N - 4 * SHARD_ROWS)  # process 0: shards 0, 2, 4 (the short last one)
    assert res["dtypes"] == ["float64"] * 3
    one = clipcore.sce(str(d), progress=False, dtype="float64")
    np.testing.assert_allclose(res["sce_cos"][:3], [one.sce, one.text_score, one.image_score], rtol=1e-10)
    assert res["sce_cos"][3] == N
    want = ref.sce_primal(ref.cosine_features(t), ref.cosine_features(x))
    np.testing.assert_allclose(res["sce_cos"][0], ref.code_score(want.complement), rtol=1e-6)
    one = clipcore.sce(str(d), kernel="gaussian", sigma=SIGMA, rff_features=6, key=0, progress=False, dtype="float64")
    omega = np.asarray(one.omega)
    want = ref.sce_primal(ref.rff_features(t, omega), ref.rff_features(x, omega))
    np.testing.assert_allclose(res["sce_rff"][:3], [one.sce, one.text_score, one.image_score], rtol=1e-10)
    np.testing.assert_allclose(res["sce_rff"][0], ref.code_score(want.complement), rtol=1e-5)
    one = clipcore.vendi(dist.distributed_source(d), kernel="gaussian", sigma=SIGMA, landmarks=12, progress=False,
                         dtype="float64")
    np.testing.assert_allclose(res["vendi_nys"][0], one.score, rtol=1e-10)
    assert res["vendi_nys"][1] == N


@pytest.mark.parametrize("die_at", ["1", "2"], ids=["before-first-reduction", "between-reductions"])
def test_dead_peer_fails_fast_with_a_clear_error(shards, tmp_path, die_at):
    """Process 1 dies mid-run (before its first reduction, while process 0 may still be reading; or after the
    first reduction, before the second); process 0 (the CLI, whose clip-dissection run reduces the SCE sums,
    then Vendi's) must stop with an error, not hang."""
    d, _, _ = shards
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    start = time.monotonic()
    p0 = subprocess.Popen([sys.executable, "-m", "clipcore.cli", "score", "--images", str(d), "--distributed",
                           "--quiet", "--convention", "clip-dissection", "--vendi-orders", "1",
                           "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                           "--process-id", "0", "--json", str(tmp_path / "never.json")],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p1 = _start(1, port, d, tmp_path / "never.json", {"DIE_AT_REDUCE": die_at})
    (rc0, err0), (rc1, _) = _wait([p0, p1], timeout=120)
    assert rc1 == 3 and rc0 != 0
    # the reduction fails at once (the closed connection: the CLI's one line, exit 2); had process 0 been
    # busy elsewhere, JAX's heartbeat check would stop it within heartbeat_timeout instead
    assert (rc0 == 2 and "clipcore: error: distributed: process 0 of 2" in err0 and "peer process died" in err0) \
        or "another task died" in err0, (rc0, err0[-3000:])
    assert time.monotonic() - start < 120
    assert not (tmp_path / "never.json").exists()


def test_cli_two_processes_flags_and_environment(shards, tmp_path):
    d, _, _ = shards
    port = _free_port()
    out = tmp_path / "cli.json"
    # float32 shards: the CLI and the single-process run both compute in float64
    cmd = [sys.executable, "-m", "clipcore.cli", "score", "--images", str(d), "--distributed", "--quiet",
           "--dtype", "float64"]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    p0 = subprocess.Popen(cmd + ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "0",
                                 "--json", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    env1 = dict(env, CLIPCORE_COORDINATOR=f"127.0.0.1:{port}", CLIPCORE_NUM_PROCESSES="2", CLIPCORE_PROCESS_ID="1")
    p1 = subprocess.Popen(cmd + ["--json", str(tmp_path / "not-written.json")], env=env1, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    for rc, err in _wait([p0, p1], timeout=180):
        assert rc == 0, err[-3000:]
    assert not (tmp_path / "not-written.json").exists()  # only process 0 writes
    payload = json.loads(out.read_text())
    one = clipcore.sce(str(d), progress=False, dtype="float64")
    np.testing.assert_allclose(payload["scores"]["sce"], one.sce, rtol=1e-10)
    np.testing.assert_allclose(payload["scores"]["vendi"]["2.0"], clipcore.renyi_score(one.image_eigenvalues, 2.0, one.clamp),
                               rtol=1e-6)  # the CLI's Vendi of sce's C_XX spectrum, taken in float32 (no x64 there)
    assert payload["distributed"]["num_processes"] == 2 and payload["result"]["n"] == N
    assert payload["result"]["dtype"] == "float64"


def test_layouts_are_dealt_by_shard_number(tmp_path):
    """A clip-retrieval folder (img_emb_0 ... img_emb_10, no zero padding as in LAION-400M) is listed as
    clipcore.sce lists it: by shard number (img_emb_10 last, never after img_emb_1), texts paired by number,
    an incomplete pair refused (or skipped with skip_incomplete), and dealt round-robin in that order; the
    processes' shards together are the whole set."""
    rng = np.random.default_rng(9)
    t = rng.normal(size=(330, 6)).astype(np.float32)
    x = (rng.normal(size=(330, 6)) + 0.5 * t).astype(np.float32)
    (tmp_path / "img_emb").mkdir()
    (tmp_path / "text_emb").mkdir()
    for k in range(11):
        np.save(tmp_path / "img_emb" / f"img_emb_{k}.npy", x[30 * k:30 * (k + 1)])
        np.save(tmp_path / "text_emb" / f"text_emb_{k}.npy", t[30 * k:30 * (k + 1)])
    pairs = dist.shard_files(str(tmp_path))
    assert [os.path.basename(a) for a, _ in pairs] == [f"img_emb_{k}.npy" for k in range(11)]
    assert [os.path.basename(b) for _, b in pairs] == [f"text_emb_{k}.npy" for k in range(11)]
    srcs = [dist.distributed_source(str(tmp_path), info=dist.ProcessInfo(p, 3)) for p in range(3)]
    assert [s.shards for s in srcs] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    np.testing.assert_array_equal(srcs[1].local.images.read(0, 120),
                                  np.concatenate([x[30 * k:30 * (k + 1)] for k in (1, 4, 7, 10)]))
    assert sum(s.local.n for s in srcs) == 330 and srcs[0].pairing.complete
    got = dist.sce(str(tmp_path), progress=False)
    want = ref.sce_primal(ref.cosine_features(t.astype(np.float64)), ref.cosine_features(x.astype(np.float64)))
    np.testing.assert_allclose(got.sce, ref.code_score(want.complement), rtol=1e-6)
    os.remove(tmp_path / "text_emb" / "text_emb_4.npy")
    with pytest.raises(ValueError, match=r"text_emb_4.npy missing.*skip_incomplete=True"):
        dist.sce(str(tmp_path), progress=False)
    src = dist.distributed_source(str(tmp_path), info=dist.ProcessInfo(1, 3), skip_incomplete=True)
    assert src.pairing.skipped == (4,) and src.local.n == 90  # shards 1, 5, 8 (the 10 complete ones, dealt)
    got = dist.sce(str(tmp_path), progress=False, skip_incomplete=True)
    keep = np.r_[0:120, 150:330]
    want = ref.sce_primal(ref.cosine_features(t[keep].astype(np.float64)),
                          ref.cosine_features(x[keep].astype(np.float64)))
    np.testing.assert_allclose(got.sce, ref.code_score(want.complement), rtol=1e-6)
    assert dist.vendi(str(tmp_path), progress=False).n == 330  # one set: the images column, all 11 shards
