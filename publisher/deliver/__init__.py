"""deliver: sending an issue's messages and learning what became of them (no I/O on import).

Modules, from the top of the package down (each imports only those below it):

- ``engine``: ``deliver_issue``: claim batches, pace, send, record, retry, release on stop;
- ``liveness``: this process's worker registration and heartbeat, judging whether others live;
- ``recorder``: group commits of send results to the store, fenced to the claim holder;
- ``journal``: the local per-worker journal of sends, replayed after a crash;
- ``retry``: backoff delays and sorting replies (bounce 5.1.x, throttle 421/4.7.x); pure;
- ``limits``: cluster-wide pacing: rate, per-relay and per-domain buckets, connection slots;
- ``transports``: the ``Transport`` interface, the file outbox and the transport registry;
- ``relays``: the ``smtp`` transport: relays in priority order with shared health, failover;
- ``smtp``: one SMTP connection: STARTTLS/TLS, AUTH, reuse, reconnects, reply mapping;
- ``dkim``: DKIM signing of outgoing messages (``[delivery.dkim]``);
- ``bounces``: reading bounce mail (DSN, ``X-Failed-Recipients``) into hard and soft bounces;
- ``imap``: polling an IMAP mailbox for bounce mail, moving what was handled;
- ``webhooks``: outgoing webhook requests: the JSON envelope, the HMAC signature, one POST.

May import: ``publisher.compose`` (messages), ``publisher.store``, and
``publisher.config``, ``publisher.models``, ``publisher.errors``, ``publisher.clock``
(and ``publisher.__version__``, for the webhooks' User-Agent).
Never the layers above it (app, services, web, ops) nor its siblings
``collect`` and ``syndicate``.
"""
