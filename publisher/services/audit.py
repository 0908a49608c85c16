"""Who did what, for the audit log (store I/O through the App).

Every operator action of every door names its :class:`Actor`: the CLI passes
``cli:<OS user>``, the console the logged-in operator's address and the client's IP, the
API ``token:<name>``. The services build the :class:`~publisher.models.AuditEntry` and the
store writes it in the same transaction as the change.
"""

from __future__ import annotations

from dataclasses import dataclass

from publisher.app import App
from publisher.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who acts, and from which address (None from the command line)."""

    name: str
    ip: str | None = None


def entry(app: App, actor: Actor, action: str, target: str, detail: str = "") -> AuditEntry:
    """The audit entry of ``actor`` doing ``action`` to ``target`` now."""
    return AuditEntry(
        at=app.clock(), actor=actor.name, action=action, target=target, detail=detail, ip=actor.ip
    )


def record_audit(app: App, actor: Actor, action: str, target: str, detail: str = "") -> None:
    """Write one audit entry on its own (for actions that change nothing in the store,
    such as a failed login); changes write theirs with the change."""
    app.store.record_audit(entry(app, actor, action, target, detail))
