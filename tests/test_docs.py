"""The project's markdown files: every relative link resolves, and nothing refers to a file outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted(p for p in ROOT.rglob("*.md") if not {".git", "node_modules"} & set(p.parts) and ".egg-info" not in str(p))
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_resolve(doc: Path):
    missing = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        path = (doc.parent / target.split("#")[0]).resolve()
        if not path.exists() or ROOT not in path.parents and path != ROOT:
            missing.append(target)
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"


#: the name of the method notes that live outside the project (spelt in pieces so this file does not name them)
OUTSIDE_NOTES = "METHODS" + ".md"


def test_no_file_refers_to_notes_outside_the_project():
    offenders = [str(p.relative_to(ROOT)) for p in [*DOCS, *ROOT.glob("aegen/**/*.py")]
                 if OUTSIDE_NOTES in p.read_text(encoding="utf-8")]
    assert not offenders


PRESETS = sorted((ROOT / "aegen" / "configs").glob("*/paper*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_method_page_shows_each_paper_preset_verbatim(preset: Path):
    """docs/methods/MODEL.md carries every paper preset file as a yaml block headed by its path,
    so the page and the preset cannot drift apart."""
    page = (ROOT / "docs" / "methods" / f"{preset.parent.name}.md").read_text()
    path = preset.relative_to(ROOT).as_posix()
    block = f"```yaml\n# {path}\n{preset.read_text()}```"
    assert block in page, f"docs/methods/{preset.parent.name}.md lacks {path} verbatim; paste it in a yaml block"
