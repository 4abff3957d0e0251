"""raqib (رقيب, "watcher"): a daemon that watches the news and raises alerts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("raqib")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

PROJECT_URL = "https://github.com/raqib-watch/raqib"
