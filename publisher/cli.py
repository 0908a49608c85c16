"""Compatibility shim: the command line moved to publisher.ops.cli (one module per command).

Kept so that ``publisher.cli:main`` in an older installed entry point, and code importing
``publisher.cli.cli``, keep working.
"""

from publisher.ops.cli import cli, main

__all__ = ["cli", "main"]
