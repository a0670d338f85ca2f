"""Connectors: the SDK (``connectors.sdk``), the registry of installed connectors and the built-in ones.

Pure Python: nothing here imports Django or the portal's packages.
"""
