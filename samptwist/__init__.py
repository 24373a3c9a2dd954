"""
samptwist: a SAMP 1.3 hub and client library built on Twisted.
"""

__version__ = "0.1.0"
