"""personas: discover groups of similar users from text and behaviour, describe them, recommend with them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("personas")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
