"""Tollhouse: an AI gateway engine. Importing it does nothing; mitmproxy glue lives in ``addons/``."""

__version__ = "0.1.0"
