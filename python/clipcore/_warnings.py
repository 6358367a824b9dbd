"""One rule for where clipcore's warnings point: at the first line outside the clipcore package (the user's
call), however deep inside the package the warning is raised — a fixed ``stacklevel`` is wrong as soon as
one entry calls another (``rke`` → ``vendi``, ``compare`` → ``sce``)."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn_user"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning]) -> None:
    """``warnings.warn(message, category)`` attributed to the caller's first frame outside clipcore."""
    frame, level = sys._getframe(1), 2  # stacklevel 1 is this function, 2 its caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
