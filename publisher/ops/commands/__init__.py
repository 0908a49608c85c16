"""One module per command of ``publisher``, imported lazily (see publisher.ops.cli.COMMANDS)."""
