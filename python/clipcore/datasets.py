"""Seeded synthetic paired embeddings (no network, no files).

The generator mimics what SCE is built to see (SPEC.md; the shared
reference's ``make_inputs.py`` is the special case ``num_modes=0``,
``gap=0``): prompts form clusters; an image carries its prompt's signal plus a
prompt-independent *mode* (e.g. a style the generator picks regardless of the
prompt) plus noise; a constant offset per modality gives CLIP's modality gap.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["PairedEmbeddings", "synthetic_pairs"]


class PairedEmbeddings(NamedTuple):
    """Paired embeddings with their generating labels.

    Attributes:
      images: ``[n, d]`` float32, unit rows.
      texts: ``[n, d]`` float32, unit rows.
      prompt_labels: ``[n]`` prompt cluster of each pair.
      mode_labels: ``[n]`` prompt-independent image mode (−1 when none).
    """

    images: np.ndarray
    texts: np.ndarray
    prompt_labels: np.ndarray
    mode_labels: np.ndarray


def _l2n(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def synthetic_pairs(
    n: int = 2000,
    d: int = 64,
    *,
    num_prompts: int = 10,
    num_modes: int = 4,
    text_noise: float = 0.35,
    signal: float = 0.7,
    mode_strength: float = 0.5,
    noise: float = 0.5,
    gap: float = 0.0,
    seed: int = 0,
) -> PairedEmbeddings:
    """Draw ``n`` seeded (image, text) pairs in ``d`` dimensions.

    text  = L2(c[label] + text_noise · N(0, I)/√d + gap · g_T)
    image = L2(signal · text + mode_strength · m[mode] + noise · N(0, I)/√d + gap · g_X)

    with c (prompt centres), m (image modes), g_T, g_X unit vectors drawn once.
    More modes (or a larger ``mode_strength``) means more prompt-independent
    diversity: a higher SCE at a similar text score.

    Args:
      n: number of pairs; d: dimension.
      num_prompts: prompt clusters; num_modes: image modes (0: none).
      gap: size of the modality offset (0: none; CLIP-like ≈ 0.5–1).
      seed: ``numpy.random.default_rng`` seed.
    """
    if n <= 0 or d <= 0 or num_prompts <= 0 or num_modes < 0:
        raise ValueError(
            f"synthetic_pairs: need n > 0, d > 0, num_prompts > 0, num_modes ≥ 0 "
            f"(got n={n}, d={d}, num_prompts={num_prompts}, num_modes={num_modes})"
        )
    rng = np.random.default_rng(seed)
    centers = _l2n(rng.standard_normal((num_prompts, d)))
    labels = rng.integers(0, num_prompts, size=n)
    g_t, g_x = _l2n(rng.standard_normal((2, d)))
    text = _l2n(centers[labels] + text_noise * rng.standard_normal((n, d)) / np.sqrt(d) + gap * g_t)
    image = signal * text + noise * rng.standard_normal((n, d)) / np.sqrt(d) + gap * g_x
    if num_modes > 0:
        modes = _l2n(rng.standard_normal((num_modes, d)))
        mode_labels = rng.integers(0, num_modes, size=n)
        image = image + mode_strength * modes[mode_labels]
    else:
        mode_labels = np.full(n, -1)
    return PairedEmbeddings(
        _l2n(image).astype(np.float32), text.astype(np.float32), labels, mode_labels
    )
