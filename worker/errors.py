"""The error tree. Every message begins with the stage that raised it (``fetch: …``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


class RaqibError(Exception):
    """Base of every error raqib raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One configuration problem, located in a file."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class ConfigError(RaqibError):
    """The configuration or a rule file is invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FetchError(RaqibError):
    """A source could not be read (network, HTTP status, file system). ``retry_after`` is how
    long the server asked us to wait (429 and 503 with Retry-After)."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ParseError(RaqibError):
    """A source was read but its content is not a usable feed or document."""


class DeliveryError(RaqibError):
    """A channel could not deliver an alert. ``permanent``: trying again cannot help (a 4xx
    answer); ``retry_after``: the receiver asked us to wait this long."""

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class StorageError(RaqibError):
    """The database refused or failed an operation. The message names the operation and the
    source or rule it was for, and the database's own short reason; never SQL or bound
    parameters. ``__cause__`` keeps the driver's exception for the log."""
