"""What a rendered compliance report says, as plain data: the cover's facts, the
traceability matrix, each requirement's section (verdict, worst measurement, its
measurements, how many plots), the repeated-trials table, the deviations and the
appendix of run files.

Standard library only, on purpose: tests/data/make_pre_issue_24_run.py runs it under
the code from before issue 24 to record what that code rendered, and
tests/test_old_runs.py runs it under today's code to compare — the same reader on both
sides, so a difference is the report's, not the reader's.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SPACE = re.compile(r"\s+")


def _text(s: str) -> str:
    return _SPACE.sub(" ", s).strip()


class _Tree(HTMLParser):
    """A minimal element tree: (tag, attrs, children) with text as plain strings."""

    VOID = {"br", "img", "meta", "col", "wbr", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = ("root", {}, [])
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = (tag, dict(attrs), [])
        self.stack[-1][2].append(node)
        if tag == "br":
            self.stack[-1][2].append("\n")
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1][2].append((tag, dict(attrs), []))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1][2].append(data)


def _walk(node):
    yield node
    if isinstance(node, tuple):
        for child in node[2]:
            yield from _walk(child)


def _all(node, tag, **attrs):
    return [n for n in _walk(node) if isinstance(n, tuple) and n[0] == tag
            and all(n[1].get(k) == v for k, v in attrs.items())]


def _raw(node) -> str:
    if isinstance(node, str):
        return node
    if node[0] in ("style", "script"):
        return ""
    return "".join(_raw(c) for c in node[2])


def text_of(node) -> str:
    return _text(_raw(node))


def lines_of(node) -> list[str]:
    """The text of a cell split where the page breaks it (<br>)."""
    return [t for t in (_text(p) for p in _raw(node).split("\n")) if t]


def _rows(table) -> list[list]:
    return [[c for c in tr[2] if isinstance(c, tuple) and c[0] in ("td", "th")] for tr in _all(table, "tr")]


def _section(tree, sid):
    found = _all(tree, "section", id=sid)
    return found[0] if found else None


def report_content(html: str) -> dict:
    """The report's content, section by section (see the module's docstring)."""
    parser = _Tree()
    parser.feed(html)
    tree = parser.root
    out: dict = {}

    cover = next(n for n in _all(tree, "section") if n[1].get("class") == "cover")
    out["overall"] = text_of(next(n for n in _walk(cover) if isinstance(n, tuple)
                                  and (n[1].get("class") or "").startswith("overall")))
    out["facts"] = {text_of(r[0]): text_of(r[1]) for r in _rows(cover) if len(r) == 2}
    out["banners"] = [text_of(n) for n in _walk(cover) if isinstance(n, tuple)
                      and (n[1].get("class") or "").split()[:1] == ["banner"]]

    matrix = []
    for tr in _all(_section(tree, "matrix"), "tr"):
        if not tr[1].get("id", "").startswith("row-"):
            continue
        cells = [c for c in tr[2] if isinstance(c, tuple) and c[0] == "td"]
        matrix.append({"id": tr[1]["id"][4:], "requirement": lines_of(cells[0]), "source": text_of(cells[1]),
                       "tests": lines_of(cells[2]), "worst": text_of(cells[3]), "limit": text_of(cells[4]),
                       "u": text_of(cells[5]), "verdict": lines_of(cells[6])})
    out["matrix"] = matrix

    deviations = _section(tree, "deviations")
    tables = _all(deviations, "table")
    out["deviations"] = [[text_of(c) for c in r] for r in _rows(tables[0])[1:]] if len(tables) == 2 else []
    out["tests"] = [[text_of(c) for c in r] for r in _rows(tables[-1])[1:]]

    sections = []
    for sec in _all(tree, "section"):
        sid = sec[1].get("id", "")
        if not sid.startswith("req-"):
            continue
        h2 = _all(sec, "h2")[0]
        tables = _all(sec, "table")
        facts = {text_of(r[0]): text_of(r[1]) for r in _rows(tables[0]) if len(r) == 2}
        entry = {"id": sid[4:], "heading": text_of(h2), "facts": facts, "statistics": None, "worst": None,
                 "measurements": [], "figures": len(_all(sec, "figure")), "images": len(_all(sec, "img")),
                 "captions": [text_of(c) for c in _all(sec, "figcaption")],
                 "banners": [text_of(p) for p in _all(sec, "p") if "banner" in (p[1].get("class") or "")]}
        for h3 in _all(sec, "h3"):
            title = text_of(h3)
            # the table that follows this heading in the section
            kids = [c for c in sec[2] if isinstance(c, tuple)]
            after = kids[kids.index(h3) + 1:]
            table = next((c for c in after if c[0] == "table"), None)
            if table is None:
                continue
            rows = _rows(table)
            if title == "Statistics":
                entry["statistics"] = [[text_of(c) for c in r] for r in rows]
            elif title.startswith("Worst measurement"):
                cells = {}
                for r in rows:
                    for head, cell in zip(r[0::2], r[1::2]):
                        cells[text_of(head)] = text_of(cell)
                entry["worst"] = {"title": title, **cells}
            elif title == "Measurements":
                entry["measurements"] = [[text_of(c) for c in r] for r in rows[1:]]
        sections.append(entry)
    out["sections"] = sections

    trials = _section(tree, "trials")
    out["trials"] = None if trials is None else {
        "columns": [lines_of(c) for c in _rows(_all(trials, "table")[0])[0]],
        "rows": [[text_of(c) for c in r] for r in _rows(_all(trials, "table")[0])[1:]],
        "notes": [text_of(li) for li in _all(trials, "li")],
    }
    files = _section(tree, "files")
    out["files"] = [line for line in text_of(_all(files, "pre")[0]).split(" ") if line] if files else []
    return out
