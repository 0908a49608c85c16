"""Allow ``python -m publisher`` as an alias of the ``publisher`` command."""

from publisher.cli import main

main()
