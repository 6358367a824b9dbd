"""THE auto rule as a table: (score, kernel, n, input kind, order, landmarks, method, mesh) → path."""

from __future__ import annotations

import pytest

from clipcore._pipeline.plan import DEFAULT_LANDMARKS, EXACT_ROWS, EXACT_VENDI_ROWS, FROBENIUS_ROWS, PATHS, Plan, plan_call

MEM, STREAM, BIGHOST = "memory", "streamed", "large host array"


def kind(k):
    """(streamed, in_memory) of an input kind."""
    return {MEM: (False, True), STREAM: (True, False), BIGHOST: (True, True)}[k]


# score, kernel, n, feature dims, input kind, order, landmarks, method, mesh -> Plan
TABLE = [
    # cosine: the smaller of D×D and n×n
    ("sce", "cosine", 1000, (512, 512), MEM, 1.0, False, "auto", False, Plan("primal")),
    ("sce", "cosine", 100, (512, 512), MEM, 1.0, False, "auto", False, Plan("dual")),
    ("sce", "cosine", 512, (512, 512), MEM, 1.0, False, "auto", False, Plan("primal")),
    ("sce", "cosine", 100, (512, 512), MEM, 1.0, False, "primal", False, Plan("primal")),
    ("sce", "cosine", 1000, (512, 512), MEM, 1.0, False, "dual", False, Plan("dual")),
    ("vendi", "cosine", 100, (512,), MEM, 1.0, False, "auto", False, Plan("dual")),
    # RFF: 2D features
    ("sce", "rff", 6000, (5000, 5000), MEM, 1.0, False, "auto", False, Plan("primal")),
    ("sce", "rff", 500, (5000, 5000), MEM, 1.0, False, "auto", False, Plan("dual")),
    # exact Gaussian: dual up to EXACT_ROWS, then Nyström with the default landmarks
    ("sce", "exact", 2000, (2000, 2000), MEM, 1.0, False, "auto", False, Plan("dual")),
    ("sce", "exact", EXACT_ROWS, (EXACT_ROWS,) * 2, MEM, 1.0, False, "auto", False, Plan("dual")),
    ("sce", "exact", EXACT_ROWS + 1, (EXACT_ROWS + 1,) * 2, MEM, 1.0, False, "auto", False,
     Plan("nystrom", landmarks=DEFAULT_LANDMARKS)),
    ("sce", "exact", EXACT_ROWS + 1, (EXACT_ROWS + 1,) * 2, MEM, 1.0, False, "dual", False, Plan("dual")),
    ("sce", "exact", 500, (500, 500), STREAM, 1.0, False, "auto", False, Plan("nystrom", landmarks=DEFAULT_LANDMARKS)),
    ("sce", "exact", 500, (500, 500), MEM, 1.0, True, "auto", False, Plan("nystrom")),
    ("sce", "exact", 500, (500, 500), MEM, 1.0, True, "primal", False, Plan("nystrom")),
    # Vendi / RKE with the exact kernel: order 2 stays exact in memory (Frobenius above FROBENIUS_ROWS)
    ("vendi", "exact", FROBENIUS_ROWS, (FROBENIUS_ROWS,), MEM, 2.0, False, "auto", False, Plan("dual")),
    ("vendi", "exact", FROBENIUS_ROWS + 1, (FROBENIUS_ROWS + 1,), MEM, 2.0, False, "auto", False, Plan("frobenius")),
    ("vendi", "exact", 10 ** 6, (10 ** 6,), BIGHOST, 2.0, False, "auto", False, Plan("frobenius")),
    ("vendi", "exact", 10 ** 6, (10 ** 6,), STREAM, 2.0, False, "auto", False,
     Plan("nystrom", landmarks=DEFAULT_LANDMARKS)),
    ("vendi", "exact", 10 ** 6, (10 ** 6,), STREAM, 2.0, False, "frobenius", False, Plan("frobenius")),
    ("vendi", "exact", 300, (300,), MEM, 2.0, False, "frobenius", False, Plan("frobenius")),
    # Vendi of other orders: one n×n eigenvalue problem, exact up to EXACT_VENDI_ROWS (> SCE's EXACT_ROWS)
    ("vendi", "exact", EXACT_ROWS + 1, (EXACT_ROWS + 1,), MEM, 1.0, False, "auto", False, Plan("dual")),
    ("vendi", "exact", EXACT_VENDI_ROWS, (EXACT_VENDI_ROWS,), MEM, 1.0, False, "auto", False, Plan("dual")),
    ("vendi", "exact", EXACT_VENDI_ROWS + 1, (EXACT_VENDI_ROWS + 1,), MEM, 1.0, False, "auto", False,
     Plan("nystrom", landmarks=DEFAULT_LANDMARKS)),
    ("vendi", "exact", EXACT_VENDI_ROWS + 1, (EXACT_VENDI_ROWS + 1,), MEM, float("inf"), False, "auto", False,
     Plan("nystrom", landmarks=DEFAULT_LANDMARKS)),
    ("vendi", "exact", 10 ** 6, (10 ** 6,), BIGHOST, 1.0, False, "auto", False,
     Plan("nystrom", landmarks=DEFAULT_LANDMARKS)),
    ("vendi", "exact", 300, (300,), MEM, 1.0, False, "auto", False, Plan("dual")),
    # streamed inputs (files, iterators, large host arrays): the primal sums
    ("sce", "cosine", 10 ** 6, (512, 512), STREAM, 1.0, False, "auto", False, Plan("streamed")),
    ("sce", "rff", 10 ** 6, (4000, 4000), BIGHOST, 1.0, False, "primal", False, Plan("streamed")),
    ("vendi", "cosine", None, (512,), STREAM, 1.0, False, "auto", False, Plan("streamed")),
    ("vendi", "cosine", 10 ** 6, (512,), BIGHOST, 2.0, False, "auto", False, Plan("streamed")),
    # a mesh: the primal sums sharded, or Nyström sharded
    ("sce", "cosine", 100, (512, 512), MEM, 1.0, False, "auto", True, Plan("primal", sharded=True)),
    ("sce", "rff", 100, (512, 512), MEM, 1.0, False, "primal", True, Plan("primal", sharded=True)),
    ("sce", "cosine", 10 ** 6, (512, 512), STREAM, 1.0, False, "auto", True, Plan("streamed", sharded=True)),
    ("sce", "exact", 500, (500, 500), MEM, 1.0, True, "auto", True, Plan("nystrom", sharded=True)),
    ("sce", "exact", 10 ** 6, (10 ** 6,) * 2, STREAM, 1.0, False, "auto", True,
     Plan("nystrom", sharded=True, landmarks=DEFAULT_LANDMARKS)),
    ("vendi", "cosine", 100, (512,), MEM, 2.0, False, "auto", True, Plan("primal", sharded=True)),
]


@pytest.mark.parametrize("score,kernel,n,dims,inp,order,landmarks,method,mesh,expected", TABLE)
def test_plan_table(score, kernel, n, dims, inp, order, landmarks, method, mesh, expected):
    streamed, in_memory = kind(inp)
    got = plan_call(score=score, kernel=kernel, n=n, feature_dims=dims, streamed=streamed, in_memory=in_memory,
                    method=method, order=order, landmarks=landmarks, mesh=mesh)
    assert got == expected
    assert got.path in PATHS


# combinations no path can run: the error names the option to change
REFUSED = [
    (dict(score="sce", kernel="exact", method="primal"), "method"),
    (dict(score="sce", kernel="cosine", method="frobenius"), "method"),
    (dict(score="vendi", kernel="cosine", method="frobenius"), "method"),
    (dict(score="vendi", kernel="rff", method="frobenius"), "method"),
    (dict(score="vendi", kernel="exact", method="frobenius", order=1.0), "method"),
    (dict(score="sce", kernel="exact", method="dual", inp=STREAM), "method"),
    (dict(score="sce", kernel="cosine", method="dual", inp=STREAM), "method"),
    (dict(score="sce", kernel="cosine", method="bogus"), "method"),
    (dict(score="sce", kernel="cosine", method="dual", mesh=True), "mesh"),
    (dict(score="sce", kernel="exact", n=100, mesh=True), "mesh"),
    (dict(score="sce", kernel="cosine", landmarks=True), "landmarks"),
    (dict(score="sce", kernel="rff", landmarks=True), "landmarks"),
    (dict(score="sce", kernel="exact", landmarks=True, method="dual"), "method"),
    (dict(score="sce", kernel="exact", landmarks=True, convention="clip-dissection"), "convention"),
]


@pytest.mark.parametrize("case,name", REFUSED)
def test_plan_refuses_with_the_option_named(case, name):
    case = dict(case)
    streamed, in_memory = kind(case.pop("inp", MEM))
    kw = dict(n=case.pop("n", 1000), feature_dims=(512, 512), streamed=streamed, in_memory=in_memory)
    with pytest.raises(ValueError, match=rf"^{name}:"):
        plan_call(**case, **kw)
