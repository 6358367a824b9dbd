"""clipcore.results: the typed results (SCEResult, VendiResult), the typed Nyström provenance (NystromInfo with
one SCEEstimate / VendiEstimate per named estimate, still indexable by name like the dict it replaced), their
JSON-ready summaries, and the degenerate / frobenius results."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import clipcore
from clipcore import results as RS

ESTIMATES = {"projected", "residual", "missing-mass", "renormalised"}


@pytest.fixture(scope="module")
def pairs():
    d = clipcore.synthetic_pairs(600, 16, num_prompts=6, num_modes=3, seed=4)
    return d.images.astype(np.float64), d.texts.astype(np.float64)


@pytest.fixture(scope="module")
def nystrom_results(pairs):
    x, t = pairs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clipcore.LowCaptureWarning)
        return (clipcore.sce(x, t, kernel="gaussian", landmarks=30, key=4),
                clipcore.vendi(x, kernel="gaussian", landmarks=30, order=2.0, key=4))


def test_nystrom_summary_is_json_ready(nystrom_results):
    """summary() survives a JSON round trip unchanged, holds the scores and the Nyström provenance (every key
    of NystromInfo, every named estimate with its values), and leaves out the eigenvalues and ω."""
    for r in nystrom_results:
        s = r.summary()
        back = json.loads(json.dumps(s))
        assert back == s
        info = r.nystrom
        assert set(back["nystrom"]) == set(RS.NystromInfo._fields)
        for k in ("landmarks", "selected", "rank", "landmark_method", "captured_trace", "captured_trace_texts",
                  "missing_mass", "estimate"):
            assert back["nystrom"][k] == info[k], k
        assert back["nystrom"]["landmarks"] == 30 and back["nystrom"]["estimate"] == "projected"
        assert back["nystrom"]["landmark_method"] == "pivoted-cholesky"
        assert 0 < back["nystrom"]["selected"] <= 30 and back["nystrom"]["rank"] <= back["nystrom"]["selected"]
        assert back["nystrom"]["missing_mass"] == pytest.approx(1 - back["nystrom"]["captured_trace"], abs=1e-15)
        assert set(back["nystrom"]["estimates"]) == ESTIMATES
        for kind, est in back["nystrom"]["estimates"].items():
            assert est == info.estimates[kind]._asdict(), kind
            assert all(np.isfinite(v) for v in est.values()), kind
        assert "eigenvalues" not in back and "omega" not in back and "image_eigenvalues" not in back
    sce, vendi = nystrom_results
    s, v = json.loads(json.dumps(sce.summary())), json.loads(json.dumps(vendi.summary()))
    assert s["sce"] == sce.sce and s["log_sce"] == sce.log_sce and s["method"] == "primal/nystrom"
    assert s["nystrom"]["estimates"]["projected"]["sce"] == sce.sce  # the result's scores are the chosen estimate's
    assert s["nystrom"]["captured_trace_texts"] is not None and s["kernel"] == "gaussian" and s["n"] == 600
    assert set(s["nystrom"]["estimates"]["missing-mass"]) == set(RS.SCEEstimate._fields)
    assert v["score"] == vendi.score and v["order"] == 2.0 and v["nystrom"]["captured_trace_texts"] is None
    assert v["nystrom"]["estimates"]["projected"] == {"score": vendi.score, "log_score": vendi.log_score}


def test_nystrom_info_is_typed_and_indexable_by_name(nystrom_results):
    sce, vendi = nystrom_results
    info = sce.nystrom
    assert isinstance(info, RS.NystromInfo) and isinstance(info, tuple)
    assert info["captured_trace"] == info.captured_trace == info[RS.NystromInfo._fields.index("captured_trace")]
    assert list(info.keys()) == list(RS.NystromInfo._fields)
    with pytest.raises(KeyError):
        info["bogus"]
    est = info["estimates"]["missing-mass"]
    assert isinstance(est, RS.SCEEstimate) and est["log_sce"] == est.log_sce
    assert est.sce == pytest.approx(np.exp(est.log_sce), rel=1e-15)
    assert est.text_score == pytest.approx(np.exp(est.log_text_score), rel=1e-15)
    assert isinstance(vendi.nystrom["estimates"]["residual"], RS.VendiEstimate)
    assert info.as_dict()["estimates"]["residual"] == info.estimates["residual"]._asdict()


def test_exact_results_have_no_nystrom_info_and_are_json_ready(pairs):
    x, t = pairs
    r = clipcore.sce(x, t, kernel="gaussian", sigma=1.0, rff_features=20, key=1)
    s = r.summary()
    assert s["nystrom"] is None and "omega" not in s and json.loads(json.dumps(s)) == s
    assert r.omega.shape == (16, 20) and s["rff_features"] == 20 and s["seed"] == 1
    v = clipcore.vendi(x)
    assert v.summary()["nystrom"] is None and float(v) == v.score


def test_frobenius_result():
    setup = type("Setup", (), {"sigma": 0.7})()
    numerics = type("Numerics", (), {"precision": type("P", (), {"name": "float64"})()})()
    execution = type("Execution", (), {"backend": "jax"})()
    r = RS.frobenius_result(250.0, 100, setup, numerics, execution)
    assert r.score == pytest.approx(100**2 / 250.0, rel=1e-14) and r.log_score == pytest.approx(np.log(40.0))
    assert r.method == "frobenius/exact" and r.order == 2.0 and r.eigenvalues.size == 0 and r.clamp is None
    assert r.sigma == 0.7 and r.n == 100 and r.nystrom is None


def test_warn_degenerate_only_when_the_text_part_keeps_every_direction():
    with pytest.warns(RS.DegenerateWarning, match="kept 10 directions for n = 10") as record:
        RS.warn_degenerate(10, 10)
    assert record[0].filename == __file__  # points at the caller outside the package
    with warnings.catch_warnings():
        warnings.simplefilter("error", RS.DegenerateWarning)
        RS.warn_degenerate(9, 10)
    assert clipcore.DegenerateWarning is RS.DegenerateWarning and clipcore.NystromInfo is RS.NystromInfo
