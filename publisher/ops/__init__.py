"""Operations: the ``publisher`` command line.

``ops.cli`` holds the root group and the registry of commands; each command lives in
``ops.commands.<noun>`` and is imported only when it runs; ``ops.common`` has the helpers
the commands share.
"""
