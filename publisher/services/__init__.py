"""services: what a door asks for, as plain functions (all I/O goes through the App).

Package map (README "Package map"): the CLI (:mod:`publisher.ops`) and the web
(:mod:`publisher.web`) call these; they know neither click nor Starlette. They take the
:class:`~publisher.app.App` and plain values and may import the app and everything below
it, never a door.

- ``cycle``: one cycle of the job: collect, feeds, every due digest (``run_once``);
- ``collecting``: every source into the store, concurrently per host;
- ``feeds``: the feed build;
- ``sending``: a digest's due issue created and delivered (``send_digest``), an open issue
  delivered (``deliver_open_issue``), the process's sender registration;
- ``issues``: operator actions: ``send_now``, ``cancel_issue``, ``pause_issue``,
  ``resume_issue``, ``requeue_failed``;
- ``composing``: an issue's articles, rendering, message template and personal links;
- ``archive``: the "view in browser" pages and their index;
- ``previews``: previews and ``[TEST]`` copies;
- ``cadence``: daily and weekly roll-up issues, a subscriber's frequency;
- ``dryrun``: what ``send --dry-run`` reports;
- ``subscribers``: ``import_csv``, ``add``, ``change``, ``remove`` (the operator's side);
- ``subscriber_csv``: subscriber CSV files read and written;
- ``signup``: the double opt-in request and confirmation;
- ``bounces``: bounce messages and the IMAP poll into subscriber states;
- ``operators``: the console's operators (add, remove, passwords, 2FA reset, login check);
- ``tokens``: API tokens (create, revoke, ``authenticate_token``);
- ``sessions``: console logins (password, second factor, sessions, login limits);
- ``twofactor``: TOTP enrolment and verification, recovery codes;
- ``overview``: what the console's dashboard and issue pages show (digests, sources, issues);
- ``audit``: the :class:`~publisher.services.audit.Actor` of an action, audit entries.
- ``monitoring``: the figures ``/metrics`` and ``status --json`` report (``figures``).
- ``charts``: the dashboard series: subscribers by status per day, issues per week.
- ``webhooks``: outgoing webhooks: ``deliver_due`` (one dispatcher pass), ``hooks``,
  ``history``, ``enable``.
- ``records``: a subscriber's deliveries, bounces and suppression; the filtered CSV export;
- ``import_jobs``: CSV imports run in a background thread, with progress (the console);
- ``auditlog``: the audit log read back: filters, keyset pages, CSV;
- ``erasure``: erasing a subscriber at their request (audited).
- ``engagement``: tracked links stored at send time, per-message tracking values, hits
  judged (HEAD, bot window, scanners, image proxies) and recorded, ``purge_engagement``;
- ``engagement_report``: an issue's engagement figures (``publisher stats``, the console's
  issue page, the API's issue stats), its chart series and CSV.
"""
