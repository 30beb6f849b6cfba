"""The documentation stays true to the repository: every relative link of the README and docs/
leads to a file that exists, every test docs/guarantees.md names exists in the file its row
links, and the README stays a front door (at most 15 KB)."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
TEST_FILE_LINK = re.compile(r"\[`[^`]*`\]\((\.\./tests/[^)]+\.py)\)")
TEST_NAME = re.compile(r"`(test_\w+)`")


def test_every_relative_link_leads_to_a_file_of_the_repository():
    broken = []
    for document in DOCUMENTS:
        for target in LINK.findall(document.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL, or a heading of the same page
            path = (document.parent / target.split("#")[0]).resolve()
            if not path.exists() or ROOT not in path.parents:
                broken.append(f"{document.relative_to(ROOT)}: {target}")
    assert broken == []


def test_every_test_the_guarantees_name_exists_where_they_say():
    missing = []
    for line in (ROOT / "docs" / "guarantees.md").read_text().splitlines():
        if not line.startswith("|"):
            continue
        # Each test name belongs to the last test file linked before it on the line; "same
        # file" keeps the one before.
        current: Path | None = None
        for token in re.split(r"(\[`[^`]*`\]\([^)]+\)|`test_\w+`)", line):
            if link := TEST_FILE_LINK.fullmatch(token):
                current = (ROOT / "docs" / link.group(1)).resolve()
            elif (
                (name := TEST_NAME.fullmatch(token))
                and current is not None
                and not re.search(rf"def {name.group(1)}\b", current.read_text())
            ):
                missing.append(f"{name.group(1)} in {current.relative_to(ROOT)}")
    assert missing == []


def test_the_readme_is_at_most_15_kb():
    assert len((ROOT / "README.md").read_bytes()) <= 15_000
