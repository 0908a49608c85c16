"""Several SMTP relays with failover (network and store I/O): pick, connect, keep healthy.

:class:`RelayTransport` is the ``smtp`` transport: the ``[[relays]]`` in ``priority`` order
(a lone ``[smtp]`` is one relay). Each sending thread connects to the first healthy relay.
A relay turns unhealthy after ``[delivery] relay_failures`` connection failures in a row,
or that many 421 replies in a row; the health lives in the store, so every process on
every host moves away from it together. An unhealthy relay is tried again once every
``relay_recheck`` seconds, by one process; when it answers, mail goes back to it. When no
relay is healthy, all are tried in order anyway: a send never gives up without trying.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from publisher.config import Config, RelayConfig, secret_from_env
from publisher.deliver.smtp import SmtpTransport
from publisher.errors import DeliveryError, TransportError
from publisher.store.limits import LimitsMixin, RelayState

RelayHealth = LimitsMixin  # the store methods relay health uses

REFRESH_SECONDS = 2.0  # how stale this process's view of the relays' health may get


class RelayDown(TransportError):
    """The relay in use failed before the message went out; route it again (no attempt)."""


def smtp_for(relay: RelayConfig) -> SmtpTransport:
    """The SMTP connection of one relay (its password from the environment)."""
    return SmtpTransport(
        relay.host,
        relay.port,
        security=relay.security,
        username=relay.username,
        password=secret_from_env(relay.password_env, what=f"relay {relay.label} password_env"),
        password_env=relay.password_env,
        timeout=relay.timeout,
        verify_certificates=relay.verify_certificates,
        max_messages_per_connection=relay.max_messages_per_connection,
    )


class RelayTransport:
    """The relays in priority order, one connection at a time, with shared health."""

    def __init__(
        self,
        relays: Sequence[RelayConfig],
        health: RelayHealth | None,
        *,
        failures: int = 3,
        recheck: float = 30.0,
        connect: Callable[[RelayConfig], SmtpTransport] = smtp_for,
    ) -> None:
        self.relays = sorted(relays, key=lambda r: r.priority)
        self.health, self.failures, self.recheck = health, failures, recheck
        self._smtp = {r.label: connect(r) for r in self.relays}
        self.current: RelayConfig | None = None
        self._states: dict[str, RelayState] = {}
        self._now = 0.0
        self._read_at = float("-inf")
        self._dirty: set[str] = set()  # relays with trouble counted since their last success

    def open(self) -> None:
        """Connect to the best relay."""
        self.route()

    def route(self) -> str:
        """The relay the next message goes through (connected); move to a better one."""
        self._refresh()
        if self.current is None or self._better_than(self.current):
            self._connect()
        assert self.current is not None
        return self.current.label

    def send(self, sender: str, recipient: str, message: bytes, name: str) -> str:
        """Send through the current relay; :class:`RelayDown` when it cannot be reached."""
        relay = self.current
        if relay is None:
            self.route()
            relay = self.current
        assert relay is not None
        try:
            reply = self._smtp[relay.label].send(sender, recipient, message, name)
        except DeliveryError as exc:
            if exc.code == 421:
                self._trouble(relay, exc.message, refusal=True)
            raise
        except TransportError as exc:  # a reconnect failed: nothing went out
            self._trouble(relay, exc.message, refusal=False)
            self.current = None
            raise RelayDown(f"relay {relay.label}: {exc.message}") from exc
        if relay.label in self._dirty:
            self._recovered(relay)
        return reply

    def close(self) -> None:
        """Close the connection in use."""
        if self.current is not None:
            self._smtp[self.current.label].close()
            self.current = None

    def describe(self) -> str:
        """The relays, best first."""
        return ", ".join(f"smtp://{r.host}:{r.port}" for r in self.relays)

    # -- health ---------------------------------------------------------------------------

    def _refresh(self, force: bool = False) -> None:
        if self.health is None or len(self.relays) < 2 and not force:
            return
        if force or time.monotonic() - self._read_at >= REFRESH_SECONDS:
            self._states, self._now = self.health.relay_states(), self.health.relay_now()
            self._read_at = time.monotonic()

    def _usable(self, relay: RelayConfig) -> bool:
        state = self._states.get(relay.label)
        return state is None or state.healthy or state.recheck_at <= self._now

    def _better_than(self, current: RelayConfig) -> bool:
        """Whether to leave ``current``: it turned unhealthy, or a better one is usable."""
        state = self._states.get(current.label)
        if state is not None and not state.healthy:
            return True
        for relay in self.relays:
            if relay.label == current.label:
                return False
            if self._usable(relay):
                return True
        return False

    def _connect(self) -> None:
        """Connect to the first usable relay; if none is, to any that answers."""
        self.close()
        errors: list[TransportError] = []
        usable = [r for r in self.relays if self._usable(r)]
        for relay in usable + [r for r in self.relays if r not in usable]:
            state = self._states.get(relay.label)
            if (state is not None and not state.healthy and relay in usable
                    and self.health is not None
                    and not self.health.claim_relay_recheck(relay.label, self.recheck)):
                continue  # another process is re-checking it right now  # fmt: skip
            try:
                self._smtp[relay.label].open()
            except TransportError as exc:
                errors.append(exc)
                self._trouble(relay, exc.message, refusal=False)
                continue
            if relay.label in self._dirty or (state is not None and not state.healthy):
                self._recovered(relay)
            self.current = relay
            return
        if len(errors) == 1:
            raise errors[0]
        raise TransportError("no relay reachable: " + "; ".join(e.message for e in errors))

    def _trouble(self, relay: RelayConfig, error: str, *, refusal: bool) -> None:
        self._dirty.add(relay.label)
        if self.health is None:
            return
        state = self.health.relay_trouble(
            relay.label, error, refusal=refusal, threshold=self.failures, recheck=self.recheck
        )
        self._states[relay.label] = state
        if not state.healthy and self.current is not None and self.current.label == relay.label:
            self.close()  # the next message routes to the next healthy relay

    def _recovered(self, relay: RelayConfig) -> None:
        self._dirty.discard(relay.label)
        if self.health is not None:
            self.health.relay_recovered(relay.label)
        self._refresh(force=True)


def relay_transport(config: Config, health: RelayHealth | None) -> RelayTransport:
    """The ``smtp`` transport of ``config``: its relays, health shared through ``health``."""
    return RelayTransport(
        config.relay_list,
        health,
        failures=config.delivery.relay_failures,
        recheck=float(config.delivery.relay_recheck),
    )
