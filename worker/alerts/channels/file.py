"""The file channel: one alert payload per line (JSON Lines), appended."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from worker.errors import DeliveryError


class FileChannel:
    def __init__(self, name: str, path: str | Path) -> None:
        self.name = name
        self.path = Path(path)

    def send_digest(self, digest: dict[str, Any]) -> None:
        self.send(digest)   # one line, schema raqib.digest/1

    def send(self, payload: dict[str, Any]) -> None:
        line = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise DeliveryError(f"deliver: {self.name}: cannot write {self.path}: "
                                f"{exc.strerror or exc}") from exc
