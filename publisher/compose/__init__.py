"""compose: the pure core of a digest (no I/O: takes ``now`` and data, returns data).

Package map (README "Package map"): may import config and the base (models, clock, files,
errors) only; never the store, the network, SMTP, the web or a scheduler. Rendering and
inlining happen once per issue; per recipient only placeholders are filled.

- ``planning``: periods, due digests, which articles an issue holds, cadence keys, windows;
- ``render``: Jinja2 + premailer: subject, inlined HTML and plain text of an issue;
- ``plaintext``: the layout of the text part;
- ``messages``: the per-issue MIME template and the cheap per-recipient bytes;
- ``links``: signed subscriber links (unsubscribe, preferences, confirm);
- ``tracking``: signed click, open and canary tokens and their placeholders;
- ``sanitize``: untrusted text made safe: article HTML, header values, excerpts;
- ``subscriptions``: the subscriber's side: forms, CSRF tokens, addresses, confirmation mail.
"""
