"""Tollhouse: an AI gateway engine. Importing it does nothing; the mitmproxy glue is ``addons/``."""

__version__ = "0.1.0"
