"""A griffe extension that reads clipcore's docstring house style for the API pages (docs only; nothing
in the package changes).

The package writes Google-style docstrings with three habits a plain Google parser misreads:

* several parameters under one entry: ``images, texts: [n, d] ...``;
* several short entries on one line: ``n: number of pairs; d: dimension.``;
* Sphinx roles for cross-references: :func:`clipcore.sce`, :class:`~clipcore.SCEResult`.

Before griffe parses a docstring, this extension rewrites the ``Args`` / ``Attributes`` sections into one
entry per name (each keeps the shared description) and turns each role into an *optional* cross-reference:
a link when the target is on the site, plain code otherwise. It also links the citations of the project's
specifications (SPEC.md, SPEC_MODELS.md) to their pages, and reads the ``#:`` comment above a module
constant as its docstring (as Sphinx does).
"""

from __future__ import annotations

import pathlib
import re

import griffe

__all__ = ["HouseDocstrings", "rewrite"]

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes|Keyword Args|Other Parameters):\s*$")
_ANY_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")
_ENTRY = re.compile(r"^(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?P<type>\([^)]*\))?\s*:(?:\s+(?P<rest>.*))?$")
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|data|mod|exc|obj|const):`(?P<tilde>~?)(?P<target>[\w.]+)(?:\(\))?`")
_SPEC = re.compile(r"\b(SPEC|SPEC_MODELS)\.md\b")


def _role(match: re.Match, module: str | None = None) -> str:
    target = match["target"]
    title = target.rsplit(".", 1)[-1] if match["tilde"] else target
    if module and not target.startswith("clipcore"):
        target = f"{module}.{target}"  # a name relative to the docstring's module
    return f'<autoref identifier="{target}" optional><code>{title}</code></autoref>'


def _spec(match: re.Match) -> str:
    anchor = "spec-models" if match[1] == "SPEC_MODELS" else "spec"
    return f'<autoref identifier="{anchor}" optional>{match[0]}</autoref>'


def _split_inline(text: str, names: set[str]) -> list[tuple[str, str]] | None:
    """``a: x; b: y`` → [(a, x), (b, y)] when every piece names a known parameter, else None."""
    pieces = re.split(r";\s+(?=\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*\s*:\s)", text)
    if len(pieces) < 2:
        return None
    out = []
    for piece in pieces[1:]:
        m = re.match(r"(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*:\s+(.*)$", piece, re.S)
        if m is None or not all(n.strip().lstrip("*") in names for n in m[1].split(",")):
            return None
        out.append((m[1], m[2]))
    return out


def _expand(names: str, type_: str | None, first: str, cont: list[str], indent: str) -> list[str]:
    """One entry per name, each with the shared description (continuation lines included)."""
    lines = []
    for name in (n.strip() for n in names.split(",")):
        head = f"{indent}{name}{' ' + type_ if type_ else ''}: {first}".rstrip()
        lines.append(head)
        lines.extend(cont)
    return lines


def rewrite(doc: str, names: set[str] | None = None, module: str | None = None) -> str:
    """The docstring with one entry per documented name and roles turned into optional cross-references.

    Args:
      doc: the docstring text.
      names: the parameter (or attribute) names an inline ``a: x; b: y`` split may produce; None: any.
      module: the dotted module a role's bare name (:func:`sce`) is relative to.
    """
    known = names
    lines = doc.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        sec = _SECTION.match(line)
        out.append(line)
        i += 1
        if not sec:
            continue
        base = len(sec[1])
        entry_indent = None
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if stripped and (len(line) - len(line.lstrip())) <= base:
                break  # the section ended
            if not stripped:
                out.append(line)
                i += 1
                continue
            indent = line[: len(line) - len(line.lstrip())]
            if entry_indent is None:
                entry_indent = indent
            # a list of names wrapped over lines: ``a, b, c,`` / ``    d, e: description``
            while (indent == entry_indent and re.fullmatch(r"(\*{0,2}\w+\s*,\s*)+", stripped)
                   and i + 1 < len(lines) and lines[i + 1].strip()):
                i += 1
                stripped = f"{stripped} {lines[i].strip()}"
            m = _ENTRY.match(stripped) if indent == entry_indent else None
            if m is None:
                out.append(line)
                i += 1
                continue
            # gather the continuation lines of this entry
            j = i + 1
            cont = []
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > len(indent)):
                if not lines[j].strip() and (j + 1 >= len(lines) or len(lines[j + 1]) - len(lines[j + 1].lstrip()) <= len(indent)):
                    break
                cont.append(lines[j])
                j += 1
            rest = m["rest"] or ""
            pool = known if known is not None else {n.strip().lstrip("*") for n in re.findall(r"\*{0,2}\w+", rest)}
            inline = _split_inline(rest, pool) if rest else None
            if inline:
                first_desc = rest.split(";")[0]
                for k, (names_k, desc_k) in enumerate([(m["names"], first_desc)] + inline):
                    last = k == len(inline)
                    out.extend(_expand(names_k, m["type"] if k == 0 else None, desc_k.strip(),
                                       cont if last else [], indent))
            else:
                out.extend(_expand(m["names"], m["type"], rest, cont, indent))
            i = j
    text = "\n".join(out)
    text = re.sub(r"::\n(\s*\n)", r":\n\1", text)  # reST's literal-block marker
    text = _ROLE.sub(lambda m: _role(m, module), text)
    return _SPEC.sub(_spec, text)


def _comment_docstring(obj: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines just above an assignment (Sphinx's attribute docstrings), if any."""
    try:
        lines = obj.lines_collection[obj.filepath] if obj.filepath in obj.lines_collection else \
            pathlib.Path(obj.filepath).read_text().splitlines()
    except (OSError, TypeError, AttributeError):
        return None
    k, found = (obj.lineno or 0) - 2, []
    while k >= 0 and lines[k].lstrip().startswith("#:"):
        found.insert(0, lines[k].lstrip()[2:].strip())
        k -= 1
    return " ".join(found) or None


class HouseDocstrings(griffe.Extension):
    """Rewrite each object's docstring (see the module docstring) before griffe parses it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:  # noqa: D102
        if obj.docstring is None and isinstance(obj, griffe.Attribute):
            comment = _comment_docstring(obj)
            if comment:
                obj.docstring = griffe.Docstring(comment, parent=obj)
        if obj.docstring is None:
            return
        names = None
        if isinstance(obj, griffe.Function):
            names = {p.name for p in obj.parameters}
        elif isinstance(obj, griffe.Class):
            names = set(obj.members)
            init = obj.members.get("__init__")
            if isinstance(init, griffe.Function):
                names |= {p.name for p in init.parameters}
        module = obj.path if isinstance(obj, griffe.Module) else obj.module.path
        obj.docstring.value = rewrite(obj.docstring.value, names, module)
