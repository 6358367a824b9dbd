"""THE auto rule: which path one score call takes (primal D×D, dual n×n, streamed primal, Nyström m×m,
exact Frobenius), and whether its sums are sharded over a device mesh. Pure Python on what the call was
given; tested as a table (tests/_pipeline/test_plan.py).

Paths:

* ``"primal"``: the D×D covariances of in-memory rows (D = d for cosine, 2·D for RFF);
* ``"dual"``: the n×n Gram matrices of in-memory rows (the exact Gaussian kernel, or n < D);
* ``"streamed"``: the primal sums over blocks of files, shards, iterators or large host arrays;
* ``"nystrom"``: m landmarks, one pass accumulating the m×m (2m×2m paired) Gram, any input kind;
* ``"frobenius"``: the exact Gaussian RKE n² / ‖K‖_F² from kernel tiles (order 2 only).
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _validate as V
from .._options import DEFAULT_LANDMARKS, METHODS

__all__ = ["EXACT_ROWS", "EXACT_VENDI_ROWS", "FROBENIUS_ROWS", "DEFAULT_LANDMARKS", "Plan", "plan_call", "PATHS"]

#: Above this many rows (or for streamed inputs) SCE and Conditional Vendi of the Gaussian kernel without
#: ``rff_features`` / ``landmarks`` / an explicit ``method`` use Nyström with DEFAULT_LANDMARKS
#: pivoted-Cholesky landmarks instead of the exact n×n kernels, whose three n×n eigenvalue problems take
#: about a minute at this size on a 2-core CPU (bench/bench_paper.py: 26–37 s at n = 6000, 118–270 s at
#: n = 10,000).
EXACT_ROWS = 7168

#: The same crossover for Vendi of orders other than 2 (one n×n eigenvalue problem: 30 s at n = 10,000);
#: RKE (order 2) stays exact at any in-memory n through ‖K‖_F².
EXACT_VENDI_ROWS = 12288

#: In-memory exact-Gaussian RKE uses the streamed ‖K‖_F² (O(n²d), no eigendecomposition, no n×n
#: matrix) above this many rows with method="auto".
FROBENIUS_ROWS = 4096

PATHS = ("primal", "dual", "streamed", "nystrom", "frobenius")


class Plan(NamedTuple):
    """Where one call goes.

    Attributes:
      path: one of :data:`PATHS`.
      sharded: the sums are accumulated per device of a mesh and added with a psum.
      landmarks: Nyström's m when the auto rule chose Nyström (else what was asked, or None).
    """

    path: str
    sharded: bool = False
    landmarks: int | None = None


def plan_call(*, score: str, kernel: str, n: int | None, feature_dims: tuple[int, ...], streamed: bool,
              in_memory: bool, method: str = "auto", order: float = 1.0, landmarks: bool = False,
              mesh: bool = False, convention: str = "paper") -> Plan:
    """The one auto rule.

    Args:
      score: ``"sce"`` (paired) or ``"vendi"`` (one set; RKE is order 2).
      kernel: ``"cosine"``, ``"rff"`` (Gaussian through random Fourier features) or ``"exact"``
        (the Gaussian kernel itself).
      n: rows (None for an iterator not yet read).
      feature_dims: the primal dimension of each set (d for cosine, 2·D for RFF).
      streamed: the rows come by blocks (files, shards, iterators, large host arrays).
      in_memory: every row is at hand (arrays, or a large host array read by blocks).
      method: ``"auto"``, ``"primal"``, ``"dual"`` or ``"frobenius"`` (vendi / rke only).
      order: the Rényi order (vendi).
      landmarks: Nyström was asked for (``landmarks=``).
      mesh: a device mesh was given.
      convention: the covariance convention (``"clip-dissection"`` is the cosine kernel's).

    Raises:
      ValueError: a combination no path can run, naming the option to change.
    """
    V.check_choice(method, "method", METHODS)
    if score == "sce" and method == "frobenius":
        raise ValueError("method: 'frobenius' is the exact Gaussian kernel's order-2 score (vendi(order=2) or "
                         "rke), not SCE's")
    if mesh and method not in ("auto", "primal"):
        raise ValueError(f"mesh: sharded scores take the primal (D×D) path; got method={method!r}")
    if landmarks:
        return _nystrom(kernel, method, convention, mesh, None)
    if kernel == "exact" and method == "auto" and _too_large_for_exact(score, n, streamed, in_memory, order):
        return _nystrom(kernel, method, convention, mesh, DEFAULT_LANDMARKS)
    if score == "vendi" and (method == "frobenius" or _frobenius_auto(kernel, method, order, n, in_memory, mesh)):
        if not (kernel == "exact" and order == 2.0):
            raise ValueError("method: 'frobenius' is the exact Gaussian kernel's order-2 score (rke, or "
                             "vendi(order=2) without rff_features)")
        return Plan("frobenius")
    if streamed:
        return Plan(_streamed(kernel, method), sharded=mesh)
    if mesh:
        if kernel == "exact":
            raise ValueError("mesh: the exact Gaussian kernel has no sharded (primal) path; pass rff_features= "
                             "or landmarks=")
        return Plan("primal", sharded=True)
    return Plan(_in_memory(kernel, method, feature_dims, n))


def _too_large_for_exact(score: str, n, streamed: bool, in_memory: bool, order: float) -> bool:
    """The n×n exact kernel is out of reach: Nyström (bench/accuracy.py); RKE in memory stays exact."""
    if score == "sce":
        return streamed or n > EXACT_ROWS
    return not in_memory or (n > EXACT_VENDI_ROWS and order != 2.0)


def _frobenius_auto(kernel: str, method: str, order: float, n, in_memory: bool, mesh: bool) -> bool:
    return (kernel == "exact" and order == 2.0 and method == "auto" and in_memory and not mesh
            and n is not None and n > FROBENIUS_ROWS)


def _nystrom(kernel: str, method: str, convention: str, mesh: bool, m: int | None) -> Plan:
    if kernel == "cosine":
        raise ValueError("landmarks: Nyström features are for kernel='gaussian' (the cosine kernel is exact in d×d)")
    if kernel == "rff":
        raise ValueError("landmarks: choose Nyström (landmarks=) or random Fourier features (rff_features=), not both")
    if method not in ("auto", "primal"):
        raise ValueError(f"method: Nyström is a primal (m×m) method; got method={method!r}")
    if convention != "paper":
        raise ValueError("convention: 'clip-dissection' is the cosine kernel's; Nyström uses convention='paper'")
    return Plan("nystrom", sharded=mesh, landmarks=m)


def _streamed(kernel: str, method: str) -> str:
    if kernel == "exact":
        raise ValueError(
            f"method: the exact Gaussian kernel (method={method!r}) needs the n×n Gram matrix, which is not "
            "formed for streamed inputs; use method='auto' (Nyström landmarks), landmarks= or rff_features=")
    if method == "dual":
        raise ValueError("method: streamed inputs take the primal (D×D) path; use method='auto' or 'primal'")
    return "streamed"


def _in_memory(kernel: str, method: str, feature_dims: tuple[int, ...], n: int) -> str:
    if kernel == "exact":
        if method == "primal":
            raise ValueError("method: the exact Gaussian kernel has no finite primal form; use method='dual' "
                             "(or 'auto'), or rff_features= for the primal")
        return "dual"
    if method != "auto":
        return method
    # primal: n·D² + D³; dual: n²·D + n³ — the smaller matrix wins.
    return "primal" if max(feature_dims) <= n else "dual"
