"""Helpers shared by tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

SPLITS = {"hm_train": ["handmade-0000"], "hm_val": ["handmade-0001"]}


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
