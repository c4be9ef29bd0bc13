"""The repository is self-contained: citations point at sections of files in ``docs/`` that exist.

Two rules, checked over every text file of the repository (code, configs, notebooks, Markdown):

* no file cites the reference notes that live outside the project (``METHODS.md``, ``METRICS.md``, ``ECOSYSTEM``,
  ``../shared/docs``) or a machine path (``/work/``);
* every ``docs/<file>.md#<anchor>`` cited anywhere, and every relative ``(<file>.md#<anchor>)`` / ``(#<anchor>)``
  link inside ``docs/`` and ``ARCHITECTURE.md``, names an existing file and a heading of it, with anchors computed
  from the headings the way GitHub renders them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()

TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".ipynb", ".toml", ".txt", ".cfg", ".ini", ".sh"}
SKIP_DIRS = {"__pycache__", "build", "dist", "wandb", "lightning_logs", "node_modules", "outputs"}

# Citations of notes outside the repository. ``METHODS`` alone is a common variable name, so it only counts
# followed by ``.md`` or a section sign / "section" / "pitfall"; the other names count anywhere.
FORBIDDEN = re.compile(
    r"METHODS(?:\.md|\s*§|\s+section|\s+pitfall)"
    r"|METRICS(?:\.md|\s*§|\s+section|\s+T\d)"
    r"|ECOSYSTEM"
    r"|shared/docs"
    r"|/work/"
)
DOCS_CITATION = re.compile(r"docs/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?")
RELATIVE_LINK = re.compile(r"\]\(([A-Za-z0-9_.-]+\.md)?#([A-Za-z0-9_-]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: inline markup removed, lower case, every character that is
    not a letter, digit, space, hyphen or underscore dropped, spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_anchors(text: str) -> set[str]:
    """All heading anchors of a Markdown text (fenced code skipped; repeated headings get ``-1``, ``-2``, ...)."""
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if not m:
            continue
        base = github_anchor(m.group(2))
        n = counts.get(base, 0)
        counts[base] = n + 1
        anchors.add(base if n == 0 else f"{base}-{n}")
    return anchors


def text_files(root: Path) -> list[Path]:
    """The repository's text files (hidden folders, caches, build and run outputs skipped; symlinked folders are
    not followed, so ``lightning_pose/configs`` is not read twice)."""
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        out += [Path(folder) / f for f in sorted(files) if Path(f).suffix in TEXT_SUFFIXES]
    return out


def link_problems(root: Path, skip: tuple[Path, ...] = ()) -> list[str]:
    """One line per bad citation under ``root``: ``file:line: problem``."""
    problems: list[str] = []
    anchor_cache: dict[Path, set[str] | None] = {}

    def anchors_of(path: Path) -> set[str] | None:
        if path not in anchor_cache:
            anchor_cache[path] = markdown_anchors(path.read_text(encoding="utf-8")) if path.is_file() else None
        return anchor_cache[path]

    def check(where: str, target: Path, anchor: str | None, shown: str) -> None:
        anchors = anchors_of(target)
        if anchors is None:
            problems.append(f"{where}: cites {shown}, but {target.relative_to(root)} does not exist")
        elif anchor is not None and anchor not in anchors:
            problems.append(
                f"{where}: cites {shown}, but {target.relative_to(root)} has no heading with anchor #{anchor}"
            )

    docs = root / "docs"
    for path in text_files(root):
        if path.resolve() in skip:
            continue
        rel = path.relative_to(root)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        in_docs = path.parent == docs or path == root / "ARCHITECTURE.md"
        for lineno, line in enumerate(text.splitlines(), 1):
            where = f"{rel}:{lineno}"
            for m in FORBIDDEN.finditer(line):
                problems.append(f"{where}: cites notes outside the repository ({m.group(0)!r}); cite docs/ instead")
            for m in DOCS_CITATION.finditer(line):
                check(where, docs / m.group(1), m.group(2), m.group(0))
            if in_docs and path.suffix == ".md":
                for m in RELATIVE_LINK.finditer(line):
                    target = path if m.group(1) is None else path.parent / m.group(1)
                    check(where, target, m.group(2), m.group(0)[2:-1])
    return problems


def test_github_anchor_rules() -> None:
    assert github_anchor("Stacked Hourglass") == "stacked-hourglass"
    assert github_anchor("PCKh") == "pckh"
    assert github_anchor("Top-down rescoring and OKS-NMS") == "top-down-rescoring-and-oks-nms"
    assert github_anchor("numpy 2 and `xtcocotools`") == "numpy-2-and-xtcocotools"
    assert github_anchor("How to add a method (heatmap, codec)") == "how-to-add-a-method-heatmap-codec"
    assert github_anchor("A & B: C.d") == "a--b-cd"
    assert github_anchor("save_last") == "save_last"
    assert markdown_anchors("# A\n## B\n```\n# not a heading\n```\n## B\n") == {"a", "b", "b-1"}


def test_repository_citations_resolve() -> None:
    problems = link_problems(ROOT, skip=(THIS,))
    assert not problems, "bad citations:\n" + "\n".join(problems)


def test_docs_hold_the_cited_notes() -> None:
    for name in ("methods.md", "metrics.md", "conventions.md", "ecosystem.md", "demo_learning.md"):
        assert (ROOT / "docs" / name).is_file(), name
    anchors = markdown_anchors((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8"))
    assert {"pck", "pckh", "coco-keypoint-ap", "ai-challenger", "distributed-evaluation"} <= anchors


@pytest.mark.parametrize(
    "planted, expected",
    [
        ("# see docs/methods.md#no-such-section\n", "has no heading with anchor #no-such-section"),
        ("# see docs/missing.md#pck\n", "docs/missing.md does not exist"),
        ('"""Definition (METRICS.md section 1)."""\n', "cites notes outside the repository ('METRICS.md')"),
        ("# METHODS §0.3 predicts it\n", "cites notes outside the repository ('METHODS §')"),
        ("x = 1  # ECOSYSTEM finding 6\n", "('ECOSYSTEM')"),
        ("see `/work/shared/docs/METHODS.md`\n", "('/work/')"),
    ],
)
def test_planted_bad_citation_is_reported(tmp_path: Path, planted: str, expected: str) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "methods.md").write_text("# Methods\n\n## Stacked Hourglass\n\nSee [PCK](#pck).\n")
    (tmp_path / "pkg").mkdir()
    good = tmp_path / "pkg" / "good.py"
    good.write_text("METHODS = ['hourglass']  # docs/methods.md#stacked-hourglass\n")
    assert link_problems(tmp_path) == [
        "docs/methods.md:5: cites #pck, but docs/methods.md has no heading with anchor #pck"
    ]
    (tmp_path / "docs" / "methods.md").write_text("# Methods\n\n## Stacked Hourglass\n\n## PCK\n")
    assert link_problems(tmp_path) == []
    (tmp_path / "pkg" / "bad.py").write_text(planted)
    problems = link_problems(tmp_path)
    assert len(problems) >= 1 and all(p.startswith("pkg/bad.py:1: ") for p in problems), problems
    assert any(expected in p for p in problems), problems
