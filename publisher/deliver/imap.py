"""Polling an IMAP mailbox for bounces (network I/O, standard library imaplib).

Each poll logs in, reads every message of ``[bounces] imap_folder``, hands the bytes to a
callback that says whether the message was handled (a bounce), and moves handled
messages to ``processed_folder`` (created on first use), with ``UID MOVE`` where the server
supports it (RFC 6851) and copy + delete + expunge otherwise. Messages that are not
bounces stay where they are, for a person to read.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable

from publisher.config import BouncesConfig, secret_from_env
from publisher.errors import TransportError


def _connect(config: BouncesConfig) -> imaplib.IMAP4:
    context = ssl.create_default_context()
    if not config.verify_certificates:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.imap_security == "tls":
        return imaplib.IMAP4_SSL(
            config.imap_host, config.imap_port, ssl_context=context, timeout=30
        )
    client = imaplib.IMAP4(config.imap_host, config.imap_port, timeout=30)
    if config.imap_security == "starttls":
        client.starttls(ssl_context=context)
    return client


def poll(config: BouncesConfig, handle: Callable[[bytes], bool]) -> tuple[int, int]:
    """Read the folder once; return (messages read, messages moved as handled)."""
    where = f"imap {config.imap_host}:{config.imap_port}"
    password = secret_from_env(config.imap_password_env, what="[bounces] imap_password_env")
    if password is None:
        raise TransportError(
            f"{where}: the password variable {config.imap_password_env!r} is not set",
            hint="export it; passwords never go in config.toml",
        )
    try:
        client = _connect(config)
        client.login(config.imap_username, password)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise TransportError(f"{where}: cannot log in: {exc}") from exc
    read = moved = 0
    try:
        status, _ = client.select(_quote(config.imap_folder))
        if status != "OK":
            raise TransportError(f"{where}: no folder {config.imap_folder!r}")
        client.create(_quote(config.processed_folder))  # fails harmlessly when it exists
        _, data = client.uid("SEARCH", None, "ALL")
        uids = data[0].split() if data and data[0] else []
        # The capabilities announced before login may omit MOVE; ask again now.
        _, caps = client.capability()
        can_move = b"MOVE" in b" ".join(c for c in caps if isinstance(c, bytes)).upper().split()
        handled: list[bytes] = []
        for uid in uids:
            _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if raw is None:
                continue
            read += 1
            if handle(raw):
                handled.append(uid)
        if handled:
            uid_set = b",".join(handled).decode()
            if can_move:
                client.uid("MOVE", uid_set, _quote(config.processed_folder))
            else:
                client.uid("COPY", uid_set, _quote(config.processed_folder))
                client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
                client.expunge()
            moved = len(handled)
    except imaplib.IMAP4.error as exc:
        raise TransportError(f"{where}: {exc}") from exc
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return read, moved


def _quote(folder: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", folder) + '"'
