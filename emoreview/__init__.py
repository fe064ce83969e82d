"""emoreview: the command-line edge of the system (``emoreview --help``)."""

__version__ = "0.1.0"
