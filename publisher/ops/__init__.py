"""ops: the operators' door: the ``publisher`` command line and the processes it runs.

Package map (README "Package map"): may import services, the app and everything below;
never :mod:`publisher.web` (``serve`` loads the web application by name, as any ASGI server
does). Heavy modules are imported inside the commands, so ``publisher --help`` stays fast.

- ``cli``: the root group and ``COMMANDS``, the lazy registry of commands;
- ``commands/<noun>``: one module per command or group of subcommands;
- ``common``: what several commands share (the app of a command, output lines);
- ``scheduler``: the daemon behind ``publisher run`` (APScheduler 3.x);
- ``worker``: ``publisher worker`` and graceful stops on signals;
- ``webhook_pump``: the webhook dispatcher thread of ``run`` and ``worker``;
- ``reports``: what ``status`` and ``issues`` report, read from the store;
- ``progress``: progress bars and per-issue delivery views;
- ``checks``: the pre-send checklist of ``publisher check``;
- ``logs``: human or JSON log lines;
- ``scaffold`` (+ ``starter/``): ``publisher init``.
"""
