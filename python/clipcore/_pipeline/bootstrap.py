"""Bootstrap over prompts for comparisons of models: resample the prompts with replacement and
recompute SCE, the text score, Vendi and CLIPScore from fixed features, B times.

A replicate weights each row by how many times its prompt was drawn, so the covariances of a replicate
are one weighted product Zᵀ diag(w) Z / Σw of the fixed features Z = [Φ(T) | Φ(X)] (cosine: the
normalised rows; Gaussian: the shared random Fourier or Nyström features), followed by the Schur
decomposition of :mod:`clipcore.schur` and the entropies of :mod:`clipcore.entropy`; with fewer rows than
features, the same spectra from the weighted n×n Grams (the dual form: n³ instead of D³ per replicate).
Models evaluated on the same prompts are resampled with the same draws (a paired bootstrap), so their
differences have tighter intervals than their scores.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._options import EPS32, x64
from .._progress import bar
from ..entropy import matrix_entropy, renyi_entropy
from ..schur import EPSILON, schur_dual, schur_primal

__all__ = ["Replicates", "prompt_ids", "draw_prompt_weights", "replicate_scores"]


class Replicates(NamedTuple):
    """``[B]`` replicate values of each score."""

    sce: np.ndarray
    text_score: np.ndarray
    image_score: np.ndarray
    clip_score: np.ndarray


def prompt_ids(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(keys [p], ids [n])``: the distinct prompt rows (bytes of each text embedding) and each row's
    prompt index (prompts repeat when several images answer one prompt)."""
    rows = np.ascontiguousarray(texts)
    keys, ids = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel(),
                          return_inverse=True)
    return keys, ids.ravel()


def draw_prompt_weights(prompt_keys: list, draws: int, seed: int) -> list[np.ndarray]:
    """Per model, ``[B, p_model]`` multiplicities of its prompts in B resamples. Models whose prompts are
    the same set get the same draws (paired); others are drawn independently."""
    rng = np.random.default_rng(seed)
    shared = {}
    out = []
    for keys in prompt_keys:
        tag = keys.tobytes()
        if tag not in shared:
            p = len(keys)
            picks = rng.integers(0, p, size=(draws, p))
            shared[tag] = np.array([np.bincount(row, minlength=p) for row in picks], np.float64).reshape(draws, p)
        out.append(shared[tag])
    return out


@functools.partial(jax.jit, static_argnames=("dt", "clamp"))
def _one(z, cos, w, rtol, *, dt, clamp):
    """Scores of one replicate from the fixed features z = [Φ(T) | Φ(X)] and row weights w (primal:
    the weighted (D_T + D_X)² covariances)."""
    zw = z * (w / jnp.sum(w))[:, None]
    g = jnp.dot(zw.T, z, precision=jax.lax.Precision.HIGHEST)
    sp = schur_primal(g[:dt, :dt], g[:dt, dt:], g[dt:, dt:], rtol, EPSILON, 0.0, mode="pinv")
    return _scores(sp, cos, w, clamp)


@functools.partial(jax.jit, static_argnames=("dx", "clamp"))
def _one_dual(g_t, g_x, cos, w, rtol, *, dx, clamp):
    """The same scores from the fixed n×n Grams Φ(T)Φ(T)ᵀ, Φ(X)Φ(X)ᵀ (dual, for n below the feature
    dimension): the weighted covariances' nonzero spectra are those of diag(√w̃) G diag(√w̃), w̃ = w / Σw,
    zero-padded to D_X like the primal's (:func:`clipcore.schur.schur_dual`)."""
    s = jnp.sqrt(w / jnp.sum(w))
    sp = schur_dual(s[:, None] * g_t * s[None, :], s[:, None] * g_x * s[None, :], rtol, EPSILON, 0.0,
                    mode="pinv", pad_to=dx)
    return _scores(sp, cos, w, clamp)


def _scores(sp, cos, w, clamp):
    return (matrix_entropy(sp.complement, clamp), matrix_entropy(sp.text, clamp),
            renyi_entropy(sp.image, 1.0, clamp), jnp.sum(w * cos) / jnp.sum(w))


def replicate_scores(z: np.ndarray, d_text: int, per_sample_clip: np.ndarray, row_prompt: np.ndarray,
                     weights: np.ndarray, *, clamp: float | None, desc: str, progress) -> Replicates:
    """Scores of every replicate.

    Args:
      z: ``[n, D_T + D_X]`` fixed features [Φ(T) | Φ(X)] of one model.
      d_text: D_T.
      per_sample_clip: ``[n]`` per-pair CLIPScore values.
      row_prompt: ``[n]`` prompt index of each row.
      weights: ``[B, p]`` prompt multiplicities (:func:`draw_prompt_weights`).
    """
    out = np.empty((len(weights), 4))
    n, d_image = z.shape[0], z.shape[1] - d_text
    with x64():
        zj = jnp.asarray(z, jnp.float64)
        cos = jnp.asarray(per_sample_clip, jnp.float64)
        rtol = jnp.asarray(d_text * EPS32)
        if n < max(d_text, d_image):  # fewer rows than features: n×n eigenproblems instead of D×D
            hp = jax.lax.Precision.HIGHEST
            g_t = jnp.dot(zj[:, :d_text], zj[:, :d_text].T, precision=hp)
            g_x = jnp.dot(zj[:, d_text:], zj[:, d_text:].T, precision=hp)
            one = lambda w: _one_dual(g_t, g_x, cos, w, rtol, dx=d_image, clamp=clamp)  # noqa: E731
        else:
            one = lambda w: _one(zj, cos, w, rtol, dt=d_text, clamp=clamp)  # noqa: E731
        with bar(len(weights), desc, progress, unit="resamples", unit_scale=False) as b:
            for i, wp in enumerate(weights):
                vals = one(jnp.asarray(wp[row_prompt]))
                out[i] = [float(v) for v in vals]
                b.update(1)
    return Replicates(np.exp(out[:, 0]), np.exp(out[:, 1]), np.exp(out[:, 2]), out[:, 3])
