"""Loopline: quality-to-customer collaboration for manufacturers."""

__version__ = "0.1.0"
