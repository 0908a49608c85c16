"""DKIM signing of outgoing messages (reads the key file or variable once; no other I/O).

dkimpy's default header list leaves out ``List-Unsubscribe-Post``, which RFC 8058
section 4 requires to be signed for one-click unsubscribe, so the list is given
explicitly. Canonicalization is relaxed/relaxed, which survives the header refolding
some relays do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dkim

from publisher.config import DkimConfig, secret_from_env
from publisher.errors import ConfigError

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


@dataclass(frozen=True)
class DkimSigner:
    """Signs message bytes with one key for ``selector._domainkey.domain``."""

    selector: str
    domain: str
    private_key: bytes

    @classmethod
    def from_config(cls, config: DkimConfig) -> DkimSigner:
        """Load the key named by ``[delivery.dkim]``; a missing or bad key is a ConfigError."""
        where = "[delivery.dkim]"
        if config.private_key_path is not None:
            try:
                key = Path(config.private_key_path).read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"{where} private_key_path {config.private_key_path}: {exc.strerror}"
                ) from exc
        else:
            value = secret_from_env(config.private_key_env, what=f"{where} private_key_env")
            if not value:
                raise ConfigError(
                    f"{where} private_key_env: variable {config.private_key_env!r} is not set",
                    hint="export the PEM private key in it",
                )
            key = value.encode()
        signer = cls(config.selector, config.domain, key)
        try:
            signer.sign(b"From: a@example.org\r\nSubject: key check\r\n\r\nx\r\n")
        except dkim.DKIMException as exc:
            raise ConfigError(f"{where}: the private key cannot sign: {exc}") from exc
        return signer

    def sign(self, message: bytes) -> bytes:
        """Return ``message`` with a ``DKIM-Signature`` header in front."""
        signature = dkim.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
        return signature + message
