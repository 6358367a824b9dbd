"""Embedding editing: nullify, focus, defocus a prompt's influence.

Ospanov, Farnia & Jalali (2024), Sec. 5 ("corrected embedding"); SPEC.md,
"Embedding editing".  On a reference set of pairs, fit the least-squares map
from prompt features to image features,

    A* = (C_TT + εI)⁺ C_TX                     [D_T, D_X]

so φ(t) A* is the part of φ(x) that the prompt t explains.  Then

    edit(x, t, λ) = φ(x) − λ · φ(t) A*

* ``nullify``  λ = strength (1: remove the prompt's component entirely),
* ``defocus``  λ = 1 + strength (push the embedding past neutral, away from t),
* ``focus``    λ = −strength (amplify the prompt's component).

The i2t variant removes an image's influence from a text embedding
(A* = (C_XX + εI)⁺ C_XT) and the t2t variant one prompt's from another's
(A* = (C_TT + εI)⁺ C_TT).

For the Gaussian kernel φ is the RFF map and the edited vectors live in
feature space (2D numbers).  One ω serves the covariances and every query:
the reference code draws fresh frequencies for the query, which makes its
output depend on the draw (a bug not reproduced here).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate as V
from ._options import EPS32, resolve_numerics
from ._pipeline.inputs import KernelSetup, resolve_kernel, resolve_kernel_options, to_user
from .covariance import column_cosine, joint_covariances
from .kernels import FeatureMap, features
from .schur import EPSILON, regression_coefficient

__all__ = ["Editor", "fit_editor"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Editor:
    """A fitted editor (a pytree: pass it through ``jax.jit``).

    Attributes:
      a_t2i: ``[D_T, D_X]`` A* from prompt features to image features.
      a_i2t: ``[D_X, D_T]`` from image features to prompt features.
      a_t2t: ``[D_T, D_T]`` from prompt features to prompt features.
      omega: ``[d, D]`` RFF frequencies (Gaussian kernel) or ``None``.
      fmap, kernel, convention, sigma, normalize, seed: static configuration.
    """

    a_t2i: jax.Array
    a_i2t: jax.Array
    a_t2t: jax.Array
    omega: jax.Array | None
    fmap: FeatureMap = dataclasses.field(metadata=dict(static=True))
    kernel: str = dataclasses.field(metadata=dict(static=True))
    convention: str = dataclasses.field(metadata=dict(static=True))
    sigma: float | None = dataclasses.field(metadata=dict(static=True))
    normalize: bool = dataclasses.field(metadata=dict(static=True))
    seed: int | None = dataclasses.field(metadata=dict(static=True))
    input_dim: int = dataclasses.field(metadata=dict(static=True))

    # ------------------------------------------------------------ features
    def features(self, x: jax.Array, name: str = "x") -> jax.Array:
        """φ(x) for ``x: [d]`` or ``[m, d]`` (the query side of every edit)."""
        x = jnp.asarray(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_dim:
            raise ValueError(
                f"{name}: expected shape [{self.input_dim}] or [m, {self.input_dim}], got {tuple(x.shape)}"
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"{name}: expected a floating-point array, got dtype {x.dtype}")
        if not isinstance(x, jax.core.Tracer):
            V.check_finite_rows(jnp.atleast_2d(x), name)
        dtype = self.a_t2i.dtype
        x = x.astype(dtype)
        if self.fmap.kind == "rff":  # (the map L2-normalises first when ``normalize``)
            return features(x, self.fmap, self.omega)
        if self.fmap.kind == "cosine":
            if not isinstance(x, jax.core.Tracer):
                V.check_nonzero_rows(jnp.atleast_2d(x), name)
            return features(x, self.fmap)
        return x  # clip-dissection cosine: the code uses the raw query

    # ---------------------------------------------------------------- edits
    def edit(self, image: jax.Array, text: jax.Array, lam: float | jax.Array) -> jax.Array:
        """φ(image) − λ · φ(text) A*_t2i; shapes ``[d]`` or ``[m, d]`` (broadcast)."""
        return self.features(image, "image") - lam * (self.features(text, "text") @ self.a_t2i)

    def nullify(self, image: jax.Array, text: jax.Array, strength: float = 1.0) -> jax.Array:
        """Remove ``strength`` × the prompt-explained component (λ = strength)."""
        return self.edit(image, text, strength)

    def defocus(self, image: jax.Array, text: jax.Array, strength: float = 1.0) -> jax.Array:
        """Push past neutral, away from the prompt (λ = 1 + strength)."""
        return self.edit(image, text, 1.0 + strength)

    def focus(self, image: jax.Array, text: jax.Array, strength: float = 1.0) -> jax.Array:
        """Amplify the prompt-explained component (λ = −strength)."""
        return self.edit(image, text, -strength)

    def nullify_i2t(self, text: jax.Array, image: jax.Array, strength: float = 1.0) -> jax.Array:
        """φ(text) − strength · φ(image) A*_i2t: remove an image's influence from a prompt."""
        return self.features(text, "text") - strength * (self.features(image, "image") @ self.a_i2t)

    def nullify_t2t(self, text: jax.Array, other_text: jax.Array, strength: float = 1.0) -> jax.Array:
        """φ(text) − strength · φ(other_text) A*_t2t: remove one prompt's influence from another."""
        return self.features(text, "text") - strength * (self.features(other_text, "other_text") @ self.a_t2t)


def fit_editor(
    images: Any,
    texts: Any,
    *,
    kernel: str = "cosine",
    sigma: float | None = None,
    rff_features: int | None = None,
    omega: Any = None,
    key: Any = None,
    convention: str = "paper",
    dtype: Any = None,
    rtol: float | None = None,
    ridge: float | None = None,
    normalize: bool = False,
    block_size: int | None = None,
) -> Editor:
    """Fit A* on reference pairs (SPEC.md, "Embedding editing").

    Args:
      images: ``[n, d]`` reference image embeddings.
      texts: ``[n, d]`` their prompts' embeddings.
      kernel: ``"cosine"`` or ``"gaussian"`` (RFF; ``rff_features`` or
        ``omega`` required — the exact kernel has no explicit features).
      convention: ``"paper"`` (row-normalised cosine features) or
        ``"clip-dissection"`` (the code's column-cosine covariances, raw
        queries).
      dtype, rtol, ridge, sigma, omega, key, normalize, block_size: as in
        :func:`clipcore.sce`; ``rtol`` defaults to (source feature
        dimension) · eps(float32).

    Returns:
      :class:`Editor`.  Its arrays follow the user's x64 setting (float32
      unless x64 is enabled), computed in float64.
    """
    nonzero = (kernel == "cosine" and convention == "paper") or bool(normalize)
    images = V.as_embeddings(images, "images", nonzero_rows=nonzero)
    texts = V.as_embeddings(texts, "texts", nonzero_rows=nonzero)
    V.check_pair(images, texts, same_dim=True)
    numerics = resolve_numerics(dtype=dtype, rtol=rtol, ridge=ridge, convention=convention, normalize=normalize)
    kopts = resolve_kernel_options(kernel=kernel, sigma=sigma, rff_features=rff_features, omega=omega, key=key)
    block_size = V.check_positive_int(block_size, "block_size")
    if kernel == "gaussian" and rff_features is None and omega is None:
        raise ValueError(
            "rff_features: editing with the Gaussian kernel needs explicit features; "
            "pass rff_features= (or omega=)"
        )
    prec, rtol, mode, ridge_v = numerics.precision, numerics.rtol, numerics.mode, numerics.ridge_value
    with prec.context():
        setup: KernelSetup = resolve_kernel(kopts, normalize=numerics.normalize, convention=convention,
                                            sample=images, dim=images.shape[1])
        if setup.kernel == "cosine" and convention == "clip-dissection":
            V.check_nonzero_columns(images, "images")
            V.check_nonzero_columns(texts, "texts")
        cov = joint_covariances(
            texts, images, setup.fmap, setup.omega,
            block_size=block_size, feature_dtype=prec.feature, acc_dtype=prec.acc,
        )
        c_tt, c_tx, c_xx = cov
        if setup.kernel == "cosine" and convention == "clip-dissection":
            n = texts.shape[0]
            c_tt, c_tx, c_xx = column_cosine(c_tt * n, c_tx * n, c_xx * n)

        def coef(c_ss, c_st):
            r = EPS32 * c_ss.shape[0] if rtol is None else rtol
            return to_user(jnp.asarray(regression_coefficient(c_ss, c_st, r, EPSILON, ridge_v, mode=mode)))

        a_t2i, a_i2t, a_t2t = coef(c_tt, c_tx), coef(c_xx, c_tx.T), coef(c_tt, c_tt)
        om = None if setup.omega is None else to_user(setup.omega)
    return Editor(
        a_t2i=jnp.asarray(a_t2i), a_i2t=jnp.asarray(a_i2t), a_t2t=jnp.asarray(a_t2t),
        omega=None if om is None else jnp.asarray(om),
        fmap=setup.fmap, kernel=setup.kernel, convention=convention, sigma=setup.sigma,
        normalize=setup.normalize, seed=setup.seed, input_dim=int(images.shape[1]),
    )
