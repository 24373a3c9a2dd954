"""
The package version, in a module of its own so that any part of samptwist
can name it without importing the package root (and with it the client
library).
"""

__version__ = "0.1.0"
