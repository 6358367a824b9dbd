"""MkDocs hooks: put the README's models section into guides/models.md (one text for both).

The README marks the section with ``<!-- models-section:start -->`` and ``<!-- models-section:end -->``;
the guide holds the placeholder ``<!-- include: README models section -->``. Links in that text are
relative to the repository root: links into docs/ are made relative to the guide, and links to other
files of the repository (which the site does not hold) become their path in code.
"""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
START, END = "<!-- models-section:start -->", "<!-- models-section:end -->"
PLACEHOLDER = "<!-- include: README models section -->"


def models_section(readme: str) -> str:
    """The README text between the two markers (a ValueError when they are missing)."""
    if readme.count(START) != 1 or readme.count(END) != 1:
        raise ValueError(f"README.md: expected one {START} and one {END} around the models section")
    return readme.split(START, 1)[1].split(END, 1)[0].strip("\n")


def _relink(match: re.Match) -> str:
    bang, text, target = match.group(1), match.group(2), match.group(3)
    if re.match(r"[a-z]+://|#|mailto:", target):
        return match.group(0)
    if target.startswith("docs/"):
        return f"{bang}[{text}](../{target[len('docs/'):]})"
    return f"{text} (`{target}`)"


def include_models(markdown: str) -> str:
    """The guide's markdown with the placeholder replaced by the README's models section."""
    section = models_section((ROOT / "README.md").read_text())
    section = re.sub(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", _relink, section)
    return markdown.replace(PLACEHOLDER, section)


def on_page_markdown(markdown, page, **kwargs):  # noqa: D103 (an MkDocs hook)
    if PLACEHOLDER in markdown:
        return include_models(markdown)
    return markdown
