"""The pictures the README and docs/*.md show are in the repository, and every picture kept
under docs/ is shown somewhere: a screenshot renamed by ``scripts/screenshots.py`` (or a
figure's file dropped) would leave a broken image on GitHub, and one no page shows any more
is a binary the repository carries for nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)")
"""A Markdown image's target: ``![alt](path)`` (a title after the path is not part of it)."""
PICTURES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _shown() -> dict[Path, list[str]]:
    """Each picture a page shows (resolved from that page's folder, as GitHub does), and
    the pages showing it."""
    shown: dict[Path, list[str]] = {}
    for page in _pages():
        for target in IMAGE_LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):  # a web address: not ours to check
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            shown.setdefault(path, []).append(str(page.relative_to(ROOT)))
    return shown


def test_every_picture_the_docs_show_is_in_the_repository() -> None:
    shown = _shown()
    assert shown, "no page shows a picture: the pattern no longer reads the docs' images"
    missing = {str(p.relative_to(ROOT)): pages for p, pages in shown.items() if not p.is_file()}
    assert missing == {}


def test_every_picture_under_docs_is_shown_by_a_page() -> None:
    shown = set(_shown())
    kept = [p for p in (ROOT / "docs").rglob("*") if p.suffix.lower() in PICTURES]
    assert any(p.parent.name == "img" for p in kept), "docs/img lost its screenshots"
    orphans = sorted(str(p.relative_to(ROOT)) for p in kept if p.resolve() not in shown)
    assert orphans == []
