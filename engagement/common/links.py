"""What behaviours link to in a repository: its own files, found on its default branch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

CONTRIBUTING_FILES = ("CONTRIBUTING.md", ".github/CONTRIBUTING.md", "docs/CONTRIBUTING.md")
CODE_OF_CONDUCT_FILES = ("CODE_OF_CONDUCT.md", ".github/CODE_OF_CONDUCT.md", "docs/CODE_OF_CONDUCT.md")


class FileReader(Protocol):
    def read_file(self, repo: str, path: str, ref: str | None = None) -> str | None: ...


def file_url(github: FileReader, repository: Mapping[str, Any], paths: Iterable[str]) -> str:
    """The web address of the first of `paths` the repository has on its default branch, or ""."""
    html = str(repository.get("html_url") or f"https://github.com/{repository['full_name']}")
    branch = str(repository.get("default_branch") or "main")
    found = next((p for p in paths if github.read_file(repository["full_name"], p, ref=branch)), None)
    return f"{html}/blob/{branch}/{found}" if found else ""
