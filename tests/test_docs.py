"""
The documentation is a reference that stays true: every relative link of README.md and docs/ resolves to a tracked
file (and, for a link into a Markdown file, to one of its headings), no source file cites the course notes by
file name (the notes are not in the repository: cite the lecture's title), and no doc under docs/ is a work
diary ("session 5", "Session 7": history belongs in git).
"""

import io
import posixpath
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# [text](target) and ![alt](target); the target ends at the first space (a title may follow) or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"`+[^`\n]*`+")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
# a course-note file name (``002_fef73cea9fc3438e.txt``) or its number as a citation ("(001: ...", "(002, ...")
NOTE_FILE = re.compile(r"\b\d{3}_[0-9a-f]{16}\b|\(00[0-4][:,)]")
SESSION = re.compile(r"\b[Ss]ession[ -]?\d|\b[Ss]essions \d")
# The headings of a history section: what was removed, tried, or is not re-run belongs in git
HISTORY = re.compile(r"Removed because|Tried and not kept|Not yet re-run|[Ss]uperseded|\(issue \d+\)")


def tracked_files() -> set[str]:
    """Paths of the files git tracks (relative, with "/"), or every file of the checkout without git."""
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {path.relative_to(ROOT).as_posix() for path in ROOT.rglob("*") if path.is_file()}
    return {name for name in listing.stdout.decode().split("\0") if name}


TRACKED = tracked_files()
MARKDOWN = sorted(name for name in TRACKED if name == "README.md" or (name.startswith("docs/") and name.endswith(".md")))
SOURCES = sorted(name for name in TRACKED if name.startswith("sb3_course/") and name.endswith(".py"))


def prose(text: str) -> str:
    """Markdown without its fenced code blocks and code spans (a link there is an example, not a link)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            lines.append("")
            continue
        lines.append("" if fenced else CODE_SPAN.sub("", line))
    return "\n".join(lines)


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped except "-" and "_", spaces as "-"; repeats get -1, -2."""
    seen: dict[str, int] = {}
    for line in prose(markdown).splitlines():
        match = HEADING.match(line)
        if not match:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # a linked heading anchors on its text
        slug = re.sub(r"[^\w\- ]", "", title.lower().replace("`", "")).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def broken_links(name: str) -> list[str]:
    """The links of the tracked Markdown file ``name`` that do not resolve."""
    text = (ROOT / name).read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        file = posixpath.normpath(posixpath.join(posixpath.dirname(name), path)) if path else name
        if file not in TRACKED:
            is_folder = any(other.startswith(file + "/") for other in TRACKED)
            if not (is_folder and not anchor):
                broken.append(f"{target}: {file} is not a tracked file")
            continue
        if anchor and file.endswith(".md") and anchor not in anchors((ROOT / file).read_text(encoding="utf-8")):
            broken.append(f"{target}: {file} has no heading with the anchor #{anchor}")
    return broken


def comments_and_strings(source: str) -> list[tuple[int, str]]:
    """The comments and string literals (docstrings included) of Python source, with their line numbers."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING) or token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            found.append((token.start[0], token.string))
    return found


def test_the_file_lists_are_not_empty():
    assert "README.md" in MARKDOWN and len(MARKDOWN) > 3, MARKDOWN
    assert len(SOURCES) > 10, SOURCES


@pytest.mark.parametrize("name", MARKDOWN)
def test_relative_links_resolve_to_tracked_files(name):
    assert broken_links(name) == []


@pytest.mark.parametrize("name", SOURCES)
def test_no_course_note_file_names_in_the_source(name):
    source = (ROOT / name).read_text(encoding="utf-8")
    cited = [f"{name}:{line}: {text.strip()[:100]}" for line, text in comments_and_strings(source) if NOTE_FILE.search(text)]
    assert cited == [], "cite the lecture by its title (see the course notes' README), not the file"


@pytest.mark.parametrize("name", [name for name in MARKDOWN if name.startswith("docs/")])
def test_docs_are_no_work_diary(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    markers = [
        f"{name}:{number}: {line.strip()[:100]}"
        for number, line in enumerate(text.splitlines(), 1)
        if SESSION.search(line) or HISTORY.search(line)
    ]
    assert markers == [], "state what is measured today; history belongs in git"


def test_the_checks_find_what_they_look_for(tmp_path):
    """Each check on a sample it must reject, so that none passes by matching nothing."""
    assert NOTE_FILE.search("Course notes: ``002_fef73cea9fc3438e.txt``") and NOTE_FILE.search("(001: ``update_params``)")
    assert not NOTE_FILE.search("learning_rate:0.001 (course: 10 000)")
    assert SESSION.search("### Session 7 (CourseDDPG)") and SESSION.search("after the session-6 changes")
    assert not SESSION.search("start_new_session=True")
    assert HISTORY.search("## Tried and not kept") and HISTORY.search("# GPU (issue 21)")
    assert not HISTORY.search("see issue 28 for the open question")
    sample = "# A title\n## Matched mode: SB3's loop, seed by seed\n[x](#matched-mode-sb3s-loop-seed-by-seed) [y](#nope)\n"
    assert anchors(sample) == {"a-title", "matched-mode-sb3s-loop-seed-by-seed"}
    assert LINK.findall(prose(sample)) == ["#matched-mode-sb3s-loop-seed-by-seed", "#nope"]
    assert LINK.findall(prose("```\n[a](missing.md)\n```\n`[b](missing.md)` [c](docs/there.md)")) == ["docs/there.md"]
