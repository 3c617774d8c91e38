"""computelease: run and finance a GPU compute-leasing business (算力租赁)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("computelease")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
