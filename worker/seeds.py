"""Seed folders: find the files that are new or changed since they were last read.

A file whose size and modification time are unchanged is not opened; one whose bytes hash as
before is recorded with its new time and not parsed again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from worker.db.sources import SeedFileState, SeedFileUpdate
from worker.parse import SEED_SUFFIXES


@dataclass(frozen=True, slots=True)
class ChangedFile:
    path: Path
    key: str              # the path relative to the folder: stable across moves of the folder
    data: bytes
    update: SeedFileUpdate


@dataclass
class SeedScan:
    changed: list[ChangedFile] = field(default_factory=list)
    touched: list[SeedFileUpdate] = field(default_factory=list)   # same bytes, new mtime
    errors: list[str] = field(default_factory=list)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in SEED_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def scan(folder: Path, known: dict[str, SeedFileState]) -> SeedScan:
    out = SeedScan()
    if not folder.is_dir():
        out.errors.append(f"seeds: {folder}: no such folder")
        return out
    for path in _files(folder):
        key = path.relative_to(folder).as_posix()
        try:
            st = path.stat()
            prev = known.get(key)
            if prev is not None and prev.size == st.st_size and prev.mtime_ns == st.st_mtime_ns:
                continue
            data = path.read_bytes()
        except OSError as exc:
            out.errors.append(f"seeds: {path}: {exc.strerror or exc}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        update = SeedFileUpdate(key, len(data), st.st_mtime_ns, digest)
        if prev is not None and prev.digest == digest:
            out.touched.append(update)
        else:
            out.changed.append(ChangedFile(path, key, data, update))
    return out
