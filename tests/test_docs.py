"""The README is the front door: short, its screenshot on the first screen, the two commands CI relies on, and
every link in it and in docs/*.md leading to a file in the repository (and to a heading there, where it names one)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 250  # read in five minutes (pytorch/examples and nanoGPT are)

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*\"([^\"]+)\"", re.I)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def repository_files() -> set[str]:
    """Paths git tracks or would track (not ignored): what a clone holds, not runs/ or data/ of this checkout."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return {path for path in listed if (ROOT / path).is_file()}


def anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def links(markdown: str) -> list[str]:
    """Every link and image target written in the page's prose (code blocks and code spans are not links)."""
    prose = CODE_SPAN.sub("", FENCE.sub("", markdown))
    return MD_LINK.findall(prose) + HTML_LINK.findall(prose)


def broken_links(page: Path, root: Path, files: set[str]) -> list[str]:
    """The relative links of `page` that do not lead to one of `files` (paths under `root`), or to a heading of the
    Markdown file they name; web addresses are not followed (nothing here may reach the network)."""
    broken = []
    for target in links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:
            continue
        path, _, fragment = unquote(target).partition("#")
        file = (page.parent / path).resolve() if path else page.resolve()
        try:
            shown = file.relative_to(root.resolve()).as_posix()
        except ValueError:
            broken.append(f"{target} (outside the repository)")
            continue
        if shown not in files:
            broken.append(f"{target} (no file {shown} in the repository)")
        elif fragment and file.suffix == ".md" and fragment not in map(anchor, HEADING.findall(
                FENCE.sub("", file.read_text()))):
            broken.append(f"{target} (no heading #{fragment} in {shown})")
    return broken


def test_the_readme_is_short_and_shows_the_app_before_anything_else():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; at most {MAX_README_LINES}"
    first_section = text.index("\n## ")
    assert re.search(r"!\[[^\]]*\]\(docs/screenshots/[^)]+\.png\)", text[:first_section]), \
        "a screenshot of the app comes before the first section"


def test_the_readme_gives_the_two_commands_ci_runs():
    """`make app` and `make test` are the README's contract: .ci/run runs `make test`, and both targets exist."""
    commands = re.findall(r"^(make \w+)\s", README.read_text(), re.M)
    assert commands[:2] == ["make app", "make test"], commands
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^app:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_every_link_in_the_readme_and_the_docs_leads_to_a_file_in_the_repository():
    files = repository_files()
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = {page.relative_to(ROOT).as_posix(): found for page in pages if (found := broken_links(page, ROOT, files))}
    assert broken == {}, f"broken links: {broken}"
    assert len(links(README.read_text())) >= 10  # the README links its screenshot, the weights' previews and docs/


def test_a_broken_link_a_missing_heading_and_a_path_outside_are_each_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Two words\n")
    (tmp_path / "pic.png").write_bytes(b"")
    page = tmp_path / "README.md"
    page.write_text("[fine](docs/a.md#two-words) ![fine](pic.png) <img src=\"pic.png\"> [web](https://example.org)\n"
                    "`[code](nowhere.md)`\n```\n[code](nowhere.md)\n```\n"
                    "[gone](docs/b.md) <img src=\"docs/gone.png\"> [no heading](docs/a.md#three) [out](../x.md)\n")
    files = {"README.md", "docs/a.md", "pic.png"}
    assert broken_links(page, tmp_path, files) == [
        "docs/b.md (no file docs/b.md in the repository)",
        "docs/a.md#three (no heading #three in docs/a.md)",
        "../x.md (outside the repository)",
        "docs/gone.png (no file docs/gone.png in the repository)",
    ]
