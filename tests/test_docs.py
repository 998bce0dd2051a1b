"""What the README and the docs/ pages name exists: every path under grokinterp/, scripts/,
benchmarks/ and tests/, every `grokinterp.x.y` module or attribute, every module file of the
architecture page's tree, and every page or file a link points to."""

from __future__ import annotations

import importlib
import re

import pytest

from tests.docs_text import PAGES, README, ROOT, fenced

TEXTS = {path.relative_to(ROOT).as_posix(): path.read_text() for path in [README, *PAGES]}


def named_paths(text: str) -> set[str]:
    """Repository paths under the code folders that a text names (`grokinterp/tasks/modular.py`,
    `scripts/`, ...)."""
    found = re.findall(r"(?<![\w./-])((?:grokinterp|scripts|benchmarks|tests)/[\w./-]*)", text)
    return {path.rstrip(".") for path in found}


def resolve(dotted: str) -> object:
    """The module, or the attribute of the longest importable module prefix, that a dotted name
    such as `grokinterp.training.loop.epoch_order` names (ImportError or AttributeError if none)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def test_the_path_and_name_finders_find_what_they_should():
    text = "see `grokinterp/storage/store.py` and scripts/test.sh, then grokinterp.open_run."
    assert named_paths(text) == {"grokinterp/storage/store.py", "scripts/test.sh"}
    assert resolve("grokinterp.storage.store.checkpoint_digest").__name__ == "checkpoint_digest"
    with pytest.raises(AttributeError):
        resolve("grokinterp.storage.store.no_such_function")


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_named_path_exists(name):
    missing = sorted(path for path in named_paths(TEXTS[name]) if not (ROOT / path).exists())
    assert missing == [], f"{name} names paths that do not exist"


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_named_module_and_attribute_exists(name):
    dotted = set(re.findall(r"\bgrokinterp(?:\.[A-Za-z_]\w*)+", TEXTS[name]))
    missing = []
    for item in sorted(dotted):
        try:
            resolve(item)
        except (ImportError, AttributeError):
            missing.append(item)
    assert missing == [], f"{name} names modules or attributes that do not exist"


def test_every_module_file_of_the_architecture_tree_exists():
    (tree,) = [
        block for block in fenced(TEXTS["docs/architecture.md"], "text") if "loop.py" in block
    ]
    files = {
        path.name
        for folder in ("grokinterp", "scripts", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
    }
    named = set(re.findall(r"\b\w+\.py\b", tree))
    assert named and named - files == set()


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_link_points_to_a_file(name):
    here = (ROOT / name).parent
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", TEXTS[name])
    missing = []
    for target in targets:
        if re.match(r"\w+://", target):
            continue
        path = (here / target).resolve()
        if not path.exists():
            missing.append(target)
    assert missing == [], f"{name} links to files that do not exist"
