"""Every relative link and image in the README and docs/ points at a file that exists.

Links to web pages (http, https, mailto) are not followed, and the part after ``#`` is not
checked: a link is broken when the file it names is missing. Code (fenced blocks and inline
spans) is skipped, so examples that look like links are not taken for links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

FENCED = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+).+?\1", re.DOTALL)
# [text](target "title") and ![alt](target), reference definitions "[name]: target", <img src> / <a href>
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(].*?)?\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)  # http:, https:, mailto:, //host


def link_targets(markdown: str) -> list[str]:
    """The relative link targets of ``markdown``, anchors and queries removed (pure anchors dropped)."""
    text = INLINE_CODE.sub("", FENCED.sub("", markdown))
    targets = []
    for pattern in (INLINE_LINK, REFERENCE, HTML):
        for match in pattern.finditer(text):
            target = match.group(1)
            if EXTERNAL.match(target):
                continue
            path = re.split(r"[#?]", target, maxsplit=1)[0]
            if path:
                targets.append(path)
    return targets


def broken_links(doc: Path) -> list[str]:
    """The targets in ``doc`` that name no existing file or folder, relative to ``doc``'s folder."""
    return [t for t in link_targets(doc.read_text(encoding="utf-8")) if not (doc.parent / t).exists()]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files(doc: Path):
    broken = broken_links(doc)
    assert not broken, f"{doc.relative_to(ROOT)} links to files that do not exist: {broken}"


def test_a_broken_link_is_found(tmp_path: Path):
    (tmp_path / "there.md").write_text("x")
    (tmp_path / "pic.png").write_bytes(b"")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](there.md#a-heading) ![ok](pic.png) [web](https://example.org/missing.md) [here](#top)\n"
        '[gone](missing.md) ![gone](img/missing.png "title")\n'
        "`[code](not-a-link.md)`\n```\n[code](also-not.md)\n```\n"
        '[ref]: ./ref-missing.md\n<img src="html-missing.png">\n'
    )
    assert broken_links(doc) == ["missing.md", "img/missing.png", "./ref-missing.md", "html-missing.png"]
