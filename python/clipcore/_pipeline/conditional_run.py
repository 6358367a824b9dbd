"""One Conditional / Information Vendi call (Jalali, Ospanov, Gohari & Farnia, arXiv 2411.02817): the
bandwidths, the plan and the three entropies H(X), H(T), H(X, T), before the typed result.

Paths (the joint's; :func:`plan_conditional`):

* ``"dual"``: the n×n kernels K_X, K_T and K_X ∘ K_T of rows in memory (n ≤ ``EXACT_ROWS`` by the auto
  rule), three eigendecompositions; at order 2 only ‖ρ‖_F², at order ∞ only λ_max (Lanczos);
* ``"frobenius"``: order 2, exact at any n: ‖K_X ∘ K_T‖_F² streamed by tiles, panel against panel with a
  progress bar (the compiled core, :mod:`clipcore._ffi.hadamard`); the marginals by the exact RKE tiles
  (Gaussian) or their d×d covariances (cosine);
* ``"nystrom"`` (Gaussian): m landmarks for each of x (σ_x), t (σ_t) and z = [x/σ_x, t/σ_t] (σ = 1: the
  product kernel), each one streamed m×m pass (:func:`clipcore._pipeline.run.run_vendi`);
* ``"rff"`` (Gaussian, ``rff_features=D``): random Fourier features of x, t and z;
* ``"tensor"`` (cosine): the marginals' d×d covariances and the joint's exact tensor-product features
  x̂ ⊗ t̂ (d_x·d_t ≤ ``TENSOR_FEATURES_MAX``) in one D×D covariance;
* ``"product-features"`` (cosine): the joint through D random features of the product kernel
  (``rff_features``, default ``DEFAULT_PRODUCT_FEATURES``), its spectrum renormalised to trace 1.

The marginals follow :func:`clipcore.vendi`'s own plan for their kernel, so H(X) is what
``vendi(images, ..., clamp=None)`` gives (before truncation).
"""

from __future__ import annotations

import contextlib
import tempfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse.linalg

from .. import _validate as V
from .. import nystrom_spectra as NS
from .. import product_kernel as PK
from .._options import TAIL_ESTIMATES
from .._progress import bar, busy
from ..entropy import Spectrum
from ..kernels import FeatureMap, draw_omega, median_sigma
from ..sources import check_block, paired_source
from .frobenius_run import frobenius_sq, panel_rows
from .inputs import SIGMA_SAMPLE, Inputs, KernelSetup, paired_inputs
from .mapped import MappedSource, spool
from .nystrom_run import NystromRun
from .plan import DEFAULT_LANDMARKS, EXACT_ROWS, FROBENIUS_ROWS, Plan, plan_call
from .run import run_vendi

__all__ = ["DEFAULT_PRODUCT_FEATURES", "TENSOR_FEATURES_MAX", "LANCZOS_ROWS", "PATHS", "check_sigma_pair", "resolve_sigmas",
           "ConditionalPlan", "plan_conditional", "Part", "ConditionalRun", "run_conditional", "spooled"]

#: Random features of the cosine product kernel when d_x·d_t is too large for the exact tensor features.
DEFAULT_PRODUCT_FEATURES = 4096
#: The largest d_x·d_t whose tensor-product features (x̂ ⊗ t̂) are used as a D×D covariance.
TENSOR_FEATURES_MAX = 4096
PATHS = ("dual", "frobenius", "nystrom", "rff", "tensor", "product-features")


# ------------------------------------------------------------------ bandwidths
def check_sigma_pair(sigma: Any) -> tuple[float | None, float | None]:
    """``sigma``: a number (both modalities), a pair ``(σ_images, σ_texts)`` (either may be None), or None."""
    if sigma is None:
        return None, None
    if isinstance(sigma, (tuple, list)) or (isinstance(sigma, np.ndarray) and sigma.size == 2):
        pair = list(sigma) if not isinstance(sigma, np.ndarray) else list(sigma.reshape(-1))
        if len(pair) != 2:
            raise ValueError(f"sigma: expected a number or a pair (sigma_images, sigma_texts), got {sigma!r}")
        return V.check_sigma(pair[0], "sigma"), V.check_sigma(pair[1], "sigma")
    s = V.check_sigma(sigma, "sigma")
    return s, s


def _text_sample(inputs: Inputs) -> np.ndarray:
    """The distinct prompts among the texts' rows that :func:`clipcore.kernels.median_sigma` would sample."""
    n = inputs.n
    idx = (np.arange(n) if n <= SIGMA_SAMPLE
           else np.sort(np.random.default_rng(0).choice(n, SIGMA_SAMPLE, replace=False)))
    rows = np.asarray(inputs.texts)[idx] if inputs.src is None else inputs.src.texts.take(idx)
    distinct = np.unique(rows, axis=0)
    if distinct.shape[0] < 2:
        raise ValueError("sigma: the texts hold one distinct prompt, so they have no bandwidth to estimate (and "
                         "H(T) = 0); pass sigma=(sigma_images, sigma_texts)")
    return distinct


def resolve_sigmas(kernel: str, given: tuple[float | None, float | None], inputs: Inputs):
    """(σ_images, σ_texts): as given, else clipcore's median heuristic per modality (the median pairwise
    distance of a seeded sample of ≤ 2000 rows, :func:`clipcore.kernels.median_sigma`; for the texts, of
    the distinct prompts in that sample: prompts repeat, k images each, and the pairs of a prompt with
    itself would pull the median to 0); (None, None) for the cosine kernel (a given σ is refused)."""
    if kernel == "cosine":
        if given != (None, None):
            raise ValueError("sigma: only used by kernel='gaussian' (got kernel='cosine')")
        return None, None
    sx, st = given
    if sx is None:
        s = inputs.sample() if callable(inputs.sample) else inputs.sample
        sx = median_sigma(np.asarray(s))
    if st is None:
        st = median_sigma(_text_sample(inputs))
    return float(sx), float(st)


# ------------------------------------------------------------------ the plan
class ConditionalPlan(NamedTuple):
    """Where one call goes: the joint's ``path`` (one of :data:`PATHS`) and the marginals' Vendi plan."""

    path: str
    marginal: Plan
    landmarks: int | None = None


def _cosine_path(n, d_joint, in_memory, order, top_k, method, rff_features, mesh) -> str:
    exact2 = order == 2.0 and top_k is None
    if method == "frobenius":
        if not exact2:
            raise ValueError("method: 'frobenius' is the exact order-2 score (order=2, no top_k)")
        return "frobenius"
    if rff_features is not None:
        return "product-features"
    if exact2 and method == "auto" and not mesh and d_joint > TENSOR_FEATURES_MAX and in_memory and n > FROBENIUS_ROWS:
        return "frobenius"
    if method != "dual" and d_joint <= TENSOR_FEATURES_MAX and (d_joint <= n or not in_memory or method == "primal"
                                                                or mesh):
        return "tensor"
    if method == "dual" or (method == "auto" and in_memory and not mesh and n <= EXACT_ROWS):
        if mesh:
            raise ValueError(f"mesh: sharded scores take the primal (D×D) path; got method={method!r}")
        if not in_memory:
            raise ValueError("method: 'dual' needs the rows in memory (n×n kernels); use method='auto'")
        return "dual"
    return "product-features"


def plan_conditional(*, kernel: str, n: int, d_images: int, d_texts: int, streamed: bool, in_memory: bool,
                     order: float, top_k: int | None, method: str, landmarks: bool, rff_features: int | None,
                     mesh: bool) -> ConditionalPlan:
    """The auto rule of Conditional Vendi (see the module docstring); refused combinations name the option."""
    if top_k is not None and method == "frobenius":
        raise ValueError("top_k: the Frobenius path (method='frobenius') has no eigenvalues to truncate")
    plan_order = order if top_k is None else 1.0  # a truncated order 2 needs the eigenvalues
    if kernel == "cosine":
        if landmarks:
            raise ValueError("landmarks: Nyström features are for kernel='gaussian' (the cosine product kernel "
                             "has exact tensor features or random product features: rff_features=)")
        marginal = plan_call(score="vendi", kernel="cosine", n=n, feature_dims=(max(d_images, d_texts),),
                             streamed=streamed, in_memory=in_memory,
                             method=method if method in ("primal", "dual") else "auto", order=plan_order,
                             mesh=mesh)
        path = _cosine_path(n, d_images * d_texts, in_memory, order, top_k, method, rff_features, mesh)
        return ConditionalPlan(path, marginal)
    if rff_features is not None:
        marginal = plan_call(score="vendi", kernel="rff", n=n, feature_dims=(2 * rff_features,), streamed=streamed,
                             in_memory=in_memory, method=method, order=plan_order, landmarks=landmarks, mesh=mesh)
        return ConditionalPlan("rff", marginal)
    marginal = plan_call(score="vendi", kernel="exact", n=n, feature_dims=(n,), streamed=streamed, in_memory=in_memory,
                         method=method, order=plan_order, landmarks=landmarks, mesh=mesh)
    if marginal.path == "dual" and method == "auto" and n > EXACT_ROWS:
        # three n×n eigenvalue problems (K_X, K_T, K_X ∘ K_T), as SCE's: SCE's crossover, not Vendi's
        marginal = Plan("nystrom", landmarks=DEFAULT_LANDMARKS)
    return ConditionalPlan(marginal.path, marginal, marginal.landmarks)


# ------------------------------------------------------------------ one entropy
class Part(NamedTuple):
    """One of H(X), H(T), H(X, T).

    Attributes:
      entropy: the Rényi entropy of order α (natural log), after truncation.
      eigenvalues: the spectrum it came from (descending; empty for the order-2 forms, λ_max alone for the
        exact order ∞ above ``LANCZOS_ROWS``).
      method: how (e.g. ``"dual/exact"``, ``"frobenius/exact"``, ``"primal/nystrom"``).
      num_features: n (exact), m's rank r (Nyström) or the feature dimension.
      estimates: Nyström: the entropy under every named estimate; else None.
      nystrom: Nyström: the run (landmarks, captured trace, tail); else None.
    """

    entropy: float
    eigenvalues: np.ndarray
    method: str
    num_features: int
    estimates: dict | None = None
    nystrom: NystromRun | None = None


def _part_of_run(run, order, top_k, clamp, estimate, renormalise: bool) -> Part:
    nr = run.nystrom
    if nr is not None:
        ests = {}
        for kind in TAIL_ESTIMATES:
            sp = NS.estimate_spectra(kind, nr.image, None, None, nr.captured, nr.tail, nr.n)[0]
            ests[kind] = PK.spectrum_entropy_host(sp, order, top_k=top_k, n=nr.n, clamp=clamp)
        return Part(ests[estimate], run.eigenvalues, run.method, run.num_features, ests, nr)
    eigs = np.asarray(run.eigenvalues, np.float64)
    if renormalise and eigs.sum() > 0:
        eigs = eigs / eigs.sum()
    h = PK.spectrum_entropy_host(Spectrum(eigs), order, top_k=top_k, n=run.n, clamp=clamp)
    return Part(h, eigs, run.method, run.num_features)


class _Call(NamedTuple):
    """What every part of one call shares."""

    numerics: Any
    nys: Any
    execution: Any
    seed: Any
    order: float
    top_k: int | None
    clamp: float | None


def _vendi_part(c: _Call, plan: Plan, inputs1: Inputs, setup: KernelSetup, *, renormalise: bool = False) -> Part:
    nys = c.nys.with_landmarks(plan.landmarks) if plan.landmarks is not None else c.nys
    run = run_vendi(plan, inputs1, setup, c.numerics, nys, c.execution, c.seed, c.order, projected=False)
    return _part_of_run(run, c.order, c.top_k, c.clamp, c.nys.estimate, renormalise)


# ------------------------------------------------------------------ columns as one-set inputs
def _column(inputs: Inputs, which: str, fn=None, dim: int | None = None, *, nonzero: bool) -> Inputs:
    """A one-set Inputs of the images, the texts, or ``fn(images, texts)`` (dimension ``dim``)."""
    if fn is None:
        fn = (lambda x, t: x) if which == "images" else (lambda x, t: t)  # noqa: E731
        dim = inputs.d_images if which == "images" else inputs.d_texts
    if inputs.src is None:
        rows = fn(np.asarray(inputs.images), np.asarray(inputs.texts)) if which == "joint" else (
            inputs.images if which == "images" else inputs.texts)
        return Inputs(None, rows, None, inputs.n, dim, None, rows)
    src = MappedSource(inputs.src, fn, dim, name=which, nonzero=nonzero)
    return Inputs(src, None, None, inputs.n, dim, None, None)


def _paired_source_of(inputs: Inputs):
    """The call's rows as a paired source (in-memory arrays wrapped), for features mapped block by block."""
    if inputs.src is not None:
        return inputs
    src = paired_source(np.asarray(inputs.images), np.asarray(inputs.texts))
    return Inputs(src, None, None, inputs.n, inputs.d_images, inputs.d_texts, None)


def _setup(kind: str, sigma=None, omega=None, features: int | None = None, seed=None) -> KernelSetup:
    if kind == "exact":
        return KernelSetup("gaussian", None, None, sigma, None, False)
    if kind == "rff":
        return KernelSetup("gaussian", FeatureMap("rff", features), omega, sigma, seed, False)
    return KernelSetup("cosine", FeatureMap(kind), None, None, None, False)  # "cosine" / "identity"


# ------------------------------------------------------------------ the paths
#: Above this many rows the exact order ∞ takes the largest eigenvalue by Lanczos (ARPACK), not all n.
LANCZOS_ROWS = 512


def _top_eigenvalue(a: np.ndarray) -> float:
    """λ_max of a symmetric PSD matrix: Lanczos (ARPACK, to machine precision, a fixed start vector), or all
    eigenvalues for small n. O(n²) per step instead of the O(n³) decomposition."""
    a = np.asarray(a, np.float64)
    if a.shape[0] <= LANCZOS_ROWS:
        return float(np.linalg.eigvalsh(a)[-1])
    return float(scipy.sparse.linalg.eigsh(a, k=1, which="LA", tol=0, v0=np.ones(a.shape[0]),
                                           return_eigenvectors=False)[0])


def _dual(c: _Call, inputs: Inputs, kernel: str, sx, st) -> tuple[Part, Part, Part]:
    prec = c.numerics.precision
    x, t = (jnp.asarray(a).astype(prec.feature) for a in (inputs.images, inputs.texts))
    opts = dict(kernel=kernel, sigma_x=sx, sigma_t=st, acc_dtype=jnp.dtype(prec.acc))
    method = f"dual/{'exact' if kernel == 'gaussian' else 'cosine'}"
    with busy("conditional_vendi (n×n)", c.execution.progress):
        if c.order == 2.0 and c.top_k is None:
            purities = [float(v) for v in PK.dual_purities(x, t, **opts)]
            return tuple(Part(-float(np.log(p)), np.zeros(0), method, inputs.n) for p in purities)
        if np.isinf(c.order) and c.top_k is None:  # −log λ_max: the largest eigenvalue is all it needs
            tops = [_top_eigenvalue(r) for r in PK.dual_densities(x, t, **opts)]
            return tuple(Part(-float(np.log(v)), np.array([v]), method, inputs.n) for v in tops)
        spectra = [np.asarray(e, np.float64) for e in PK.dual_spectra(x, t, **opts)]
    return tuple(Part(PK.spectrum_entropy_host(Spectrum(e), c.order, top_k=c.top_k, n=inputs.n, clamp=c.clamp), e,
                      method, inputs.n) for e in spectra)


def _host_rows(a) -> bool:
    return isinstance(a, np.ndarray) or all(dev.platform == "cpu" for dev in a.devices())


def _hadamard_frobenius(c: _Call, inputs: Inputs, kernel: str, sx, st) -> float:
    """‖K_X ∘ K_T‖_F² of the call's rows: panels with a bar of pairs (host rows / files), or one call of
    the target on an accelerator."""
    src, backend, dt = inputs.src, c.execution.backend, np.dtype(c.numerics.precision.feature)
    n, d = inputs.n, inputs.d_images + inputs.d_texts
    if inputs.distributed:
        raise ValueError("method: the exact order-2 path reads the rows several times (panel against panel); a "
                         "distributed source covers this process's rows only: use landmarks= or rff_features=")
    desc = "conditional_vendi (exact ‖K_X∘K_T‖_F²)"
    if src is None and not (backend == "ffi" and _host_rows(inputs.images)):
        with busy(desc, c.execution.progress):
            return PK.hadamard_sq_frobenius(jnp.asarray(inputs.images).astype(dt), jnp.asarray(inputs.texts).astype(dt),
                                            kernel=kernel, sigma_x=sx, sigma_t=st, backend=backend)
    if src is not None:
        def read(a, b):
            x, t = src.images.read(a, b), src.texts.read(a, b)
            check_block(x, "images", a, src.images.locate, nonzero=kernel == "cosine")
            check_block(t, "texts", a, src.texts.locate, nonzero=kernel == "cosine")
            return np.ascontiguousarray(x, dt), np.ascontiguousarray(t, dt)
    else:
        hx, ht = np.ascontiguousarray(inputs.images, dt), np.ascontiguousarray(inputs.texts, dt)

        def read(a, b):
            return hx[a:b], ht[a:b]

    streamed = src is not None and not src.in_memory
    with bar(n * (n + 1) // 2, desc, c.execution.progress, unit="pairs") as progress:
        return PK.hadamard_sq_frobenius_panels(read, n, kernel=kernel, sigma_x=sx, sigma_t=st,
                                               panel_rows=panel_rows(n, d, streamed=streamed), backend=backend,
                                               on_pairs=progress.update)


def _frobenius(c: _Call, plan: ConditionalPlan, inputs: Inputs, kernel: str, sx, st) -> tuple[Part, Part, Part]:
    f = _hadamard_frobenius(c, inputs, kernel, sx, st)
    joint = Part(PK.entropy_from_sq_frobenius(f, inputs.n), np.zeros(0), f"frobenius/{kernel}", inputs.n)
    if kernel == "cosine":  # the marginals' d×d covariances are exact
        marg = [_vendi_part(c, plan.marginal, _column(inputs, w, nonzero=True), _setup("cosine"))
                for w in ("images", "texts")]
        return joint, marg[0], marg[1]
    parts = []
    for which, sigma in (("images", sx), ("texts", st)):
        fm, n = frobenius_sq(_column(inputs, which, nonzero=False), sigma, c.numerics.precision, c.execution, False)
        parts.append(Part(PK.entropy_from_sq_frobenius(fm, n), np.zeros(0), "frobenius/exact", n))
    return joint, parts[0], parts[1]


def _approximate(c: _Call, plan: ConditionalPlan, inputs: Inputs, kernel: str, sx, st,
                 rff_features: int | None) -> tuple[Part, Part, Part]:
    """Nyström / RFF / tensor / product features: three Vendi runs (x, t and the product's rows)."""
    dx, dt = inputs.d_images, inputs.d_texts
    key = c.seed.key
    nonzero = kernel == "cosine"
    if plan.path in ("nystrom", "rff"):
        omegas = ([draw_omega(jax.random.fold_in(key, i), d, rff_features, s) for i, (d, s)
                   in enumerate(((dx, sx), (dt, st), (dx + dt, 1.0)))] if plan.path == "rff" else [None] * 3)
        kind = "rff" if plan.path == "rff" else "exact"
        mk = (lambda s, om: _setup(kind, s, om, rff_features, c.seed.seed))  # noqa: E731
        zmap = (lambda x, t: PK.scaled_concat(x, t, sx, st))  # noqa: E731
        joint = _vendi_part(c, plan.marginal, _column(inputs, "joint", zmap, dx + dt, nonzero=False), mk(1.0, omegas[2]))
        hx = _vendi_part(c, plan.marginal, _column(inputs, "images", nonzero=False), mk(sx, omegas[0]))
        ht = _vendi_part(c, plan.marginal, _column(inputs, "texts", nonzero=False), mk(st, omegas[1]))
        return joint, hx, ht
    if plan.path == "tensor":
        fmap, dim, renorm = PK.tensor_features, dx * dt, False
    else:
        pmap = PK.draw_product_features(jax.random.fold_in(key, 2), dx, dt, rff_features or DEFAULT_PRODUCT_FEATURES,
                                        jnp.dtype(c.numerics.precision.feature))
        host = PK.ProductFeatureMap(np.asarray(pmap.w_x), np.asarray(pmap.w_t))
        fmap, dim, renorm = (lambda x, t: PK.product_random_features(x, t, host)), host.num_features, True
    paired = _paired_source_of(inputs)
    jplan = Plan("streamed", sharded=c.execution.mesh is not None)
    joint = _vendi_part(c, jplan, _column(paired, "joint", fmap, dim, nonzero=True), _setup("identity"),
                        renormalise=renorm)._replace(method=f"primal/{plan.path}")
    hx = _vendi_part(c, plan.marginal, _column(inputs, "images", nonzero=nonzero), _setup("cosine"))
    ht = _vendi_part(c, plan.marginal, _column(inputs, "texts", nonzero=nonzero), _setup("cosine"))
    return joint, hx, ht


class ConditionalRun(NamedTuple):
    """The three entropies of one call and what produced them."""

    joint: Part
    images: Part
    texts: Part
    path: str
    n: int
    sigma_images: float | None
    sigma_texts: float | None


def run_conditional(plan: ConditionalPlan, inputs: Inputs, *, kernel: str, sigmas, numerics, nys, execution, seed,
                    order: float, top_k: int | None, clamp: float | None,
                    rff_features: int | None) -> ConditionalRun:
    """H(X, T), H(X), H(T) along ``plan`` (σ's resolved; iterators already spooled)."""
    sx, st = sigmas
    c = _Call(numerics, nys, execution, seed, order, top_k, clamp)
    if plan.path == "dual":
        parts = _dual(c, inputs, kernel, sx, st)
    elif plan.path == "frobenius":
        parts = _frobenius(c, plan, inputs, kernel, sx, st)
    else:
        parts = _approximate(c, plan, inputs, kernel, sx, st, rff_features)
    joint, hx, ht = parts
    n = joint.nystrom.n if joint.nystrom is not None else inputs.n
    return ConditionalRun(joint, hx, ht, plan.path, int(n), sx, st)


@contextlib.contextmanager
def spooled(inputs: Inputs, *, nonzero: bool, progress: bool | None):
    """``inputs`` with a block iterator written to temporary files first (removed on exit): the three
    entropies read the rows several times, an iterator only once."""
    if not inputs.iterator:
        yield inputs
        return
    with tempfile.TemporaryDirectory(prefix="clipcore-cond-") as tmp:
        src = spool(inputs.src, tmp, nonzero=nonzero, progress=progress, desc="conditional_vendi")
        yield paired_inputs(src, None, nonzero=nonzero, same_dim=False)  # small spools are read whole
