"""The landing folder: which source groups have arrived, which are complete, and when they came.

A group is a folder named `group…` holding one `branches*.csv`, one `sales_agents*.csv` and
one `sales_transactions*.csv` (docs/rules.md §1). Its arrival time is the newest modification
time of its three files, so the hourly partition a group belongs to is a fact of the landing
folder that the sensor, the raw asset and a replay all compute the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from retail_assets.storage.hours import key_of

FILE_KINDS = ("branches", "sales_agents", "sales_transactions")


@dataclass(frozen=True)
class LandedGroup:
    name: str
    path: Path
    files: dict[str, Path]  # kind -> file, only the kinds found unambiguously
    problems: tuple[str, ...]  # why the group cannot be ingested (yet); empty when complete

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def arrived_at(self) -> datetime:
        newest = max(file.stat().st_mtime for file in self.files.values())
        return datetime.fromtimestamp(newest, tz=UTC)

    @property
    def unterminated(self) -> list[str]:
        """Its files that do not end with a line break: a writer may still be writing them."""
        return [file.name for file in self.files.values() if not _ends_with_line_break(file)]

    @property
    def partition_key(self) -> str:
        """The hourly partition of the group's arrival, in Dagster's hourly key format."""
        return key_of(self.arrived_at)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a file of the group is replaced or touched."""
        parts = []
        for kind in FILE_KINDS:
            stat = self.files[kind].stat()
            parts.append(f"{kind}:{self.files[kind].name}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _ends_with_line_break(file: Path) -> bool:
    """True for an empty file too: it has no record to cut."""
    with open(file, "rb") as data:
        if data.seek(0, 2) == 0:
            return True
        data.seek(-1, 2)
        return data.read(1) in (b"\n", b"\r")


def landed_group(landing_dir: Path, name: str) -> LandedGroup:
    """The group folder `name` of the landing folder, as scan_landing sees it."""
    return _inspect(landing_dir / name, landing_dir.resolve())


def scan_landing(landing_dir: Path) -> list[LandedGroup]:
    """Every `group*` folder of the landing folder, complete or not, in a stable order."""
    if not landing_dir.is_dir():
        return []
    root = landing_dir.resolve()
    folders = [p for p in landing_dir.iterdir() if p.name.startswith("group")]
    return [_inspect(folder, root) for folder in sorted(folders, key=_group_order)]


def _group_order(path: Path) -> tuple:
    """group2 before group10: numbers compared as numbers."""
    digits = "".join(ch for ch in path.name if ch.isdigit())
    return (int(digits) if digits else -1, path.name)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _inspect(folder: Path, root: Path) -> LandedGroup:
    if not _inside(folder, root):
        return LandedGroup(folder.name, folder, {}, ("refused: the folder lies outside landing",))
    if not folder.is_dir():
        return LandedGroup(folder.name, folder, {}, ("not a folder",))
    problems, files = [], {}
    entries = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
    for kind in FILE_KINDS:
        matches = [p for p in entries if p.name.lower().startswith(kind)]
        outside = [p.name for p in matches if not _inside(p, root)]
        if outside:
            problems.append(f"refused: {', '.join(outside)} points outside landing")
        elif len(matches) > 1:
            problems.append(f"ambiguous: {len(matches)} {kind} files")
        elif not matches:
            problems.append(f"missing the {kind} file")
        elif not matches[0].is_file():
            problems.append(f"{matches[0].name} is not a regular file")
        else:
            files[kind] = matches[0]
    return LandedGroup(folder.name, folder, files, tuple(problems))
