"""Scores per group: one id per row (the prompt of each image, or a class), each group scored alone.

Prompts repeat in real evaluations (k images per prompt), so a pooled diversity score mixes the spread
across prompts with the spread within each; :func:`per_group` gives a score of every group and their
mean next to the pooled value, with the pooled call's bandwidth so the groups are comparable.
:func:`clipcore.conditional.conditional_vendi` takes ``groups=`` itself.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

__all__ = ["check_groups", "GroupedScores", "per_group"]


def check_groups(groups: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``groups``: an ``[n]`` array of prompt / class ids (ints or strings; no NaN; every id on ≥ 2 rows)
    → (sorted distinct ids, ``[n]`` index of each row's id).

    A group of one row is refused: every diversity score of one sample is its minimum (Vendi 1, all
    entropies 0) whatever the sample, so it would only pull the mean over groups down; drop or merge it.
    """
    try:
        g = np.asarray(groups)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"groups: expected an [{n}] array of ids ({exc})") from None
    if g.ndim != 1 or g.shape[0] != n:
        raise ValueError(f"groups: expected one id per row, an [{n}] array, got shape {list(g.shape)}")
    if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
        raise ValueError(f"groups: row {int(np.flatnonzero(~np.isfinite(g))[0])} has a non-finite id")
    if g.dtype.kind not in "biufUS" and not (g.dtype.kind == "O" and all(isinstance(v, (str, int)) for v in g)):
        raise ValueError(f"groups: expected integer or string ids, got dtype {g.dtype}")
    if g.dtype.kind == "O" and len({type(v) for v in g}) > 1:
        raise ValueError("groups: ids mix strings and integers; use one kind")
    ids, inverse = np.unique(g, return_inverse=True)
    sizes = np.bincount(inverse.reshape(-1), minlength=ids.shape[0])
    if np.any(sizes < 2):
        lone = [i.item() if hasattr(i, "item") else i for i in ids[sizes < 2]]
        more = "" if len(lone) <= 5 else f" and {len(lone) - 5} more"
        which = f"id {lone[0]!r} has" if len(lone) == 1 else f"ids {', '.join(map(repr, lone[:5]))}{more} have"
        raise ValueError(f"groups: {which} a single row; a group's "
                         "diversity needs at least 2 rows (drop or merge such groups)")
    return ids, inverse.reshape(-1)


class GroupedScores(NamedTuple):
    """A score pooled and per group (:func:`per_group`).

    Attributes:
      pooled: the score's result on all rows.
      ids: the distinct group ids, sorted. sizes: ``[G]`` rows per group.
      results: each group's result. scores: ``[G]`` ``float(result)`` of each. mean: their unweighted mean.
    """

    pooled: Any
    ids: list
    sizes: np.ndarray
    results: list
    scores: np.ndarray
    mean: float

    def summary(self, pooled: bool = True) -> dict:
        """JSON-ready (ids as Python scalars); ``pooled=False`` leaves the pooled result out (when it is the
        result that holds these groups)."""
        out = {"ids": [i.item() if hasattr(i, "item") else i for i in self.ids], "sizes": self.sizes.tolist(),
               "scores": self.scores.tolist(), "mean": self.mean}
        if pooled:
            out["pooled"] = self.pooled.summary() if hasattr(self.pooled, "summary") else float(self.pooled)
        return out


def per_group(fn: Callable[..., Any], x: Any, groups: Any, *, shared: tuple[str, ...] = ("sigma",),
              pooled: Any = None, **kwargs) -> GroupedScores:
    """``fn`` (e.g. :func:`clipcore.vendi`, :func:`clipcore.rke`) on all rows of ``x`` and on each group's.

    The options named in ``shared`` that the call left unset (None) take the pooled result's value, so
    every group is scored with the pooled bandwidth (the σ heuristic of a small group would differ).

    Args:
      fn: a score taking ``fn(x, **kwargs)`` and returning a result with ``float(result)``.
      x: ``[n, d]`` rows in memory (an array), or a row source with ``n`` and ``take(rows)`` (e.g. a
        :class:`clipcore.sources.RowSource` of files: each group's rows are read alone; ``pooled`` is
        then required).
      groups: ``[n]`` prompt / class ids (:func:`check_groups`).
      shared: option names copied from the pooled result when not given.
      pooled: the pooled result when already computed (else ``fn(x, **kwargs)`` is).
      **kwargs: ``fn``'s options.

    Returns:
      :class:`GroupedScores`.
    """
    if not isinstance(x, np.ndarray) and hasattr(x, "take") and hasattr(x, "n"):
        if pooled is None:
            raise ValueError("pooled: per_group of a row source needs the pooled result (fn on all rows)")
        n, take = int(x.n), x.take
    else:
        rows = np.asarray(x)
        if rows.ndim != 2:
            raise ValueError(f"x: expected [n, d] rows, got shape {list(rows.shape)}")
        n, take = rows.shape[0], rows.__getitem__
    ids, inverse = check_groups(groups, n)
    pooled = fn(rows, **kwargs) if pooled is None else pooled
    opts = dict(kwargs)
    for name in shared:
        if opts.get(name) is None and getattr(pooled, name, None) is not None:
            opts[name] = getattr(pooled, name)
    results, sizes = [], []
    for k in range(ids.shape[0]):
        idx = np.flatnonzero(inverse == k)
        results.append(fn(take(idx), **opts))
        sizes.append(idx.size)
    scores = np.asarray([float(r) for r in results], np.float64)
    return GroupedScores(pooled, [i.item() if hasattr(i, "item") else i for i in ids], np.asarray(sizes), results,
                         scores, float(scores.mean()))
