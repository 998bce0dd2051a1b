"""The README and the docs/ pages as the tests read them: their fenced blocks, and the commands of
a shell block."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
"""Every docs page (the results log among them: it holds no blocks to run)."""


def fenced(text: str, language: str) -> list[str]:
    """The bodies of the ```language blocks of a markdown text, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def commands(block: str) -> list[str]:
    """The commands of a shell block: lines joined across a trailing backslash, blank lines and
    lines that are only a comment left out."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def blocks_of(language: str, sources: list[Path]) -> list[tuple[Path, int, str]]:
    """(file, index within that file, body) of every ```language block of the files."""
    return [
        (path, index, body)
        for path in sources
        for index, body in enumerate(fenced(path.read_text(), language))
    ]


def block_id(path: Path, index: int) -> str:
    """A test id: the file's name without .md and the block's index in it."""
    return f"{path.stem}-{index}"
