"""Watching files: the configuration, rule files and seed folders (watchfiles, inotify where
the system has it). Changes are reported in batches, after a short debounce, to a callback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog
from watchfiles import watch

log = structlog.get_logger("raqib.watch")


class Watcher:
    """Calls ``on_change(paths)`` for each batch of changes under ``paths()``. The set of
    watched paths is read again after every batch, so a reload that adds a folder is seen."""

    def __init__(self, paths: Callable[[], Iterable[str]],
                 on_change: Callable[[set[Path]], None]) -> None:
        self.paths = paths
        self.on_change = on_change
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and wait (up to *timeout* seconds) for the watching thread to end:
        a process that exits while watchfiles' thread is still inside its Rust code aborts."""
        self.stop_event.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            targets = sorted({str(Path(p).resolve()) for p in self.paths() if Path(p).exists()})
            if not targets:
                self.stop_event.wait(5)
                continue
            try:
                for changes in watch(*targets, stop_event=self.stop_event, debounce=400,
                                     step=50, rust_timeout=1000, yield_on_timeout=False,
                                     raise_interrupt=False, ignore_permission_denied=True):
                    self.on_change({Path(p) for _, p in changes})
                    break   # read the paths again: the change may have added or removed some
            except Exception:   # a watcher failure must not stop the daemon; try again soon
                log.exception("file watching failed; retrying")
                self.stop_event.wait(5)
