"""climb_bayes: choose a multilingual pretraining mix from pilot runs, with honest uncertainty."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("climb_bayes")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
