"""clipcore.cli._common: JSON writing, tables, provenance and the kernel flags the commands share."""

from __future__ import annotations

import argparse
import hashlib
import json
import math

import numpy as np
import pytest

from clipcore.cli import _common as C


def test_jsonable_and_write_json(tmp_path):
    payload = {"a": np.arange(3), "b": (np.float32(0.5), np.int64(7)), "c": [math.inf, -math.inf, math.nan],
               "d": {"e": np.float64(1.25)}, "f": None, "g": "text"}
    path = tmp_path / "deep" / "out.json"
    C.write_json(str(path), payload)
    back = json.loads(path.read_text())
    assert back == {"a": [0, 1, 2], "b": [0.5, 7], "c": ["inf", "-inf", "nan"], "d": {"e": 1.25}, "f": None,
                    "g": "text"}
    assert path.read_text().endswith("}\n")


def test_table_aligns_and_formats():
    out = C.table([("alpha", 0.5, None), ("b", 1e-5, 3)], ("name", "value", "n"))
    lines = out.splitlines()
    assert lines[0].split() == ["name", "value", "n"] and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith("alpha") and lines[2].rstrip().endswith("-")
    assert "0.500000" in lines[2] and "1.000000e-05" in lines[3]
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header


def test_file_provenance_hashes_small_files(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "x.npy", x)
    prov = C.file_provenance(str(tmp_path / "x.npy"), "images")
    data = (tmp_path / "x.npy").read_bytes()
    assert prov["sha256"] == hashlib.sha256(data).hexdigest() and prov["bytes"] == len(data)
    assert prov["shape"] == [4, 3] and prov["rows"] == 4 and prov["dtype"] == "float32"
    assert prov["path"] == str(tmp_path / "x.npy")
    missing = C.file_provenance(str(tmp_path / "nope.npy"), "images")
    assert missing == {"path": str(tmp_path / "nope.npy")}


def test_environment_names_the_versions():
    import jax

    import clipcore

    env = C.environment()
    assert env["clipcore"] == clipcore.__version__ and env["jax"] == jax.__version__
    assert {"numpy", "python", "platform", "device", "date"} <= set(env)


def test_kernel_flags_become_score_keywords(tmp_path):
    p = argparse.ArgumentParser()
    C.add_kernel_options(p)
    kw = C.kernel_kwargs(p.parse_args(["--kernel", "gaussian", "--sigma", "0.5", "--seed", "3", "--dtype", "float32"]))
    assert kw == dict(kernel="gaussian", sigma=0.5, rff_features=None, convention="paper", dtype="float32", rtol=None,
                      ridge=None, normalize=False, key=3)
    omega = np.ones((4, 2))
    np.save(tmp_path / "w.npy", omega)
    kw = C.kernel_kwargs(p.parse_args(["--omega", str(tmp_path / "w.npy"), "--seed", "3"]))
    assert "key" not in kw and np.array_equal(kw["omega"], omega)  # ω overrides the seed
    assert C.quiet_progress(argparse.Namespace(quiet=True)) is False
    assert C.quiet_progress(argparse.Namespace(quiet=False)) is None


def test_pair_inputs_need_images():
    p = argparse.ArgumentParser()
    C.add_pair_inputs(p)
    assert p.parse_args(["--images", "x.npy"]).texts is None
    with pytest.raises(SystemExit):
        p.parse_args([])
