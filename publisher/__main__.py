"""Allow ``python -m publisher`` as an alias of the ``publisher`` command."""

from publisher.ops.cli import main

main()
