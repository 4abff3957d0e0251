"""The alert payload (kept under this name for importers; see ``worker.payload``)."""

from worker.payload import SCHEMA, build_payload, iso, sample

__all__ = ["SCHEMA", "build_payload", "iso", "sample"]
