"""The delivery engine (store, transport and clock I/O): claim, send, record, retry.

Each ``[delivery] connections`` worker thread has its own transport connection and loops:
claim a batch of due deliveries in the name of this process's registration (taking over
the claims of workers that are gone, see :mod:`publisher.deliver.liveness`), personalise (and
DKIM-sign) each message, journal it, send it, and hand the reply to the recorder, which
journals it at once and group-commits results every few tens of milliseconds
(:mod:`publisher.deliver.recorder`). After a crash the next sender on the host replays the journal,
so only messages on the wire at the crash can go twice (with the same Message-ID; such
take-overs are counted as ``recovered``). A worker that finds its lease may have run out
(it was stopped) checks that its claims are still its own before it sends more.

Replies are sorted here:

- 2xx: ``sent``;
- 5xx: permanent, ``failed``; a 5.1.x "no such user" is ``bounced`` and the subscriber is
  marked ``bounced`` so they are not mailed again;
- 4xx, a dropped connection or a timeout: retried with exponential backoff and jitter, up
  to ``max_attempts``;
- 421 or 4.7.x ("slow down"): retried like a 4xx, and the relay is paused for every
  process sharing the store (``throttle_seconds``, doubling while the relay keeps
  refusing); ``publisher status`` shows the pause.

Pacing (:mod:`publisher.deliver.limits`) is shared by the cluster: before each message a thread
waits for a slot of the cluster ``rate_limit``, of its relay and of its domain, and holds
one of the domain's connection slots. A relay that cannot be reached is no attempt: the
message is routed to the next healthy relay (:mod:`publisher.deliver.relays`).

A stop (SIGTERM) lets each thread finish the message in flight, records the results and
puts the rest of its claimed batch back in the queue, so a later run goes on from there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from publisher.compose.messages import MessageTemplate, personal, personalize
from publisher.config import DeliveryConfig
from publisher.deliver.limits import DomainGate, Pacer
from publisher.deliver.liveness import SenderSession
from publisher.deliver.recorder import Recorder
from publisher.deliver.relays import RelayDown, RelayTransport
from publisher.deliver.retry import is_bounce, is_throttle, retry_delay
from publisher.deliver.transports import Transport
from publisher.errors import DeliveryError, TransportError
from publisher.models import Held, Recipient, SendOutcome
from publisher.store import Store

MAX_ROUTES = 10  # relays tried for one message before the run gives up

Signer = Callable[[bytes], bytes]


@dataclass
class DeliveryResult:
    """Counts of one delivery run of an issue (``recovered`` are possible duplicates)."""

    sent: int = 0
    failed: int = 0
    bounced: int = 0
    retrying: int = 0
    released: int = 0
    recovered: int = 0
    throttled: int = 0
    lost: int = 0
    held: list[Held] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        """Messages with a final outcome in this run."""
        return self.sent + self.failed + self.bounced


def _outcome(recipient: Recipient, exc: DeliveryError) -> SendOutcome:
    return SendOutcome(
        recipient.delivery_id,
        False,
        exc.message,
        exc.permanent,
        exc.code,
        bounce=exc.permanent and is_bounce(exc.code, exc.message),
    )


def deliver_issue(
    store: Store,
    template: MessageTemplate,
    transport_factory: Callable[[], Transport],
    settings: DeliveryConfig,
    *,
    base_url: str,
    make_token: Callable[[str, int, str], str],
    clock: Callable[[], datetime],
    label: str,
    session: SenderSession,
    stop: threading.Event | None = None,
    sign: Signer | None = None,
    progress: Callable[[DeliveryResult], None] | None = None,
    relay_rates: dict[str, float] | None = None,
) -> DeliveryResult:
    """Send every due delivery of the issue; return the counts of this run.

    ``session`` is this process's registration: claims are made in its name, taking over
    those of workers that are gone, and its journal records each message as it goes.
    ``stop`` ends the run early: messages in flight are finished and recorded, claimed
    ones not yet sent go back to the queue. ``sign`` (DKIM) is applied to every message;
    ``progress`` is called with the running counts after each recorded group;
    ``relay_rates`` maps a relay's name to its ``rate``.
    """
    stop = stop or threading.Event()
    halt = threading.Event()  # set when one thread failed: the others stop too
    pacer = Pacer(store, settings, relay_rates)

    result = DeliveryResult()
    lock = threading.Lock()
    owner = session.worker_id
    workers = max(1, settings.connections)
    batch_size = settings.batch_size
    if settings.rate_limit > 0:
        # A slow rate must not hold a claim past half its lease (another worker would retake it).
        per_thread = settings.rate_limit / workers
        batch_size = max(1, min(batch_size, int(per_thread * settings.lease_seconds / 2)))

    def on_recorded(batch: list[tuple[SendOutcome, int]], lost: set[int]) -> None:
        with lock:
            for outcome, attempt in batch:
                if outcome.delivery_id in lost:
                    result.lost += 1
                elif outcome.ok:
                    result.sent += 1
                elif outcome.permanent or attempt >= settings.max_attempts:
                    if outcome.bounce:
                        result.bounced += 1
                    else:
                        result.failed += 1
                else:
                    result.retrying += 1
            if progress is not None:
                progress(result)

    recorder = Recorder(
        store, owner, clock,
        max_attempts=settings.max_attempts,
        retry_at=lambda attempt, delivery_id: (
            clock() + retry_delay(attempt, delivery_id, settings.retry_base_seconds)
        ),
        journal=session.journal, on_recorded=on_recorded,
    )  # fmt: skip

    def stopping() -> bool:
        return stop.is_set() or halt.is_set() or recorder.error is not None

    def slow_down(relay: str | None, reply: str) -> None:
        seconds = pacer.relay_bucket(relay or "default").pause(settings.throttle_seconds, reply)
        with lock:
            result.throttled += 1
        store.set_throttle(clock() + timedelta(seconds=seconds), reply, session.label)

    def send_one(transport: Transport, gate: DomainGate, recipient: Recipient,
                 message: bytes, name: str) -> str | None:  # fmt: skip
        """Pace and send one message; None when stopping. A relay down is no attempt."""
        domain = recipient.email.rpartition("@")[2].lower()
        if not gate.enter(domain, stopping):
            return None
        for _ in range(MAX_ROUTES):
            relay = transport.route() if isinstance(transport, RelayTransport) else None
            if not pacer.wait(pacer.buckets_for(relay, domain), stopping):
                return None
            if session.journal is not None:
                session.journal.started(recipient.delivery_id, recipient.attempts)
            try:
                reply = transport.send(settings.from_, recipient.email, message, name)
            except RelayDown:
                continue
            except DeliveryError as exc:
                if is_throttle(exc.code, exc.message):
                    slow_down(relay, exc.message)
                raise
            pacer.relay_bucket(relay or "default").accepted()
            return reply
        raise TransportError(f"no relay took the message to {domain} in {MAX_ROUTES} tries")

    def still_ours(batch: list[Recipient], handled: int, lost: set[int]) -> None:
        """After a stop or a cut-off past half a lease: drop the claims taken over since."""
        rest = [r.delivery_id for r in batch[handled:]]
        lost |= set(rest) - store.verify_claims(rest, owner)
        session.renewed()

    def send_batch(transport: Transport, gate: DomainGate, batch: list[Recipient]) -> None:
        handled = 0
        lost: set[int] = set()
        gap = session.gap
        if settings.domains:  # one domain after another: fewer connection-slot changes
            batch = sorted(batch, key=lambda r: r.email.rpartition("@")[2].lower())
        try:
            for recipient in batch:
                if stopping():
                    break
                if session.lease_at_risk() or session.gap != gap:
                    still_ours(batch, handled, lost)
                    gap = session.gap
                if recipient.delivery_id in lost:
                    handled += 1
                    continue
                person = personal(
                    base_url, recipient.subscriber_id, recipient.email, recipient.name,
                    recipient.digest_id, make_token,
                )  # fmt: skip
                message = personalize(template, person)
                if sign is not None:
                    message = sign(message)
                name = f"{label}-{recipient.subscriber_id:07d}"
                try:
                    reply = send_one(transport, gate, recipient, message, name)
                except DeliveryError as exc:
                    handled += 1
                    recorder.add(_outcome(recipient, exc), recipient.attempts)
                    if is_throttle(exc.code, exc.message):
                        break  # the rest of the batch goes back to the queue
                else:
                    if reply is None:
                        break
                    handled += 1
                    recorder.add(
                        SendOutcome(recipient.delivery_id, True, reply), recipient.attempts
                    )
        finally:
            unsent = [r.delivery_id for r in batch[handled:] if r.delivery_id not in lost]
            released = store.release_claims(unsent, clock(), owner=owner) if unsent else 0
            with lock:
                result.released += released
                result.lost += len(lost)

    def run_worker(index: int) -> None:
        transport = transport_factory()
        gate = DomainGate(store, settings, f"{session.label}/{index}")
        try:
            transport.open()
            while not stopping():
                plan = session.plan(template.issue_id)
                batch = store.claim_batch(
                    template.issue_id, f"{session.label}/{index}", clock(), batch_size,
                    settings.lease_seconds, owner=owner, takeover=plan.takeover,
                    lease_decides=plan.lease_decides,
                )  # fmt: skip
                if not batch:
                    return
                with lock:
                    result.recovered += sum(r.recovered for r in batch)
                send_batch(transport, gate, batch)
        except BaseException:
            halt.set()
            raise
        finally:
            transport.close()
            gate.leave()

    try:
        if workers == 1:
            run_worker(0)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
                futures = [pool.submit(run_worker, i) for i in range(workers)]
                errors = [f.exception() for f in futures]
                first = next((e for e in errors if e is not None), None)
                if first is not None:
                    raise first
    finally:
        try:
            recorder.close()
        finally:
            pacer.release()  # slots leased ahead go to the processes still sending
    result.held = session.held(template.issue_id)
    return result


def make_signer(settings: DeliveryConfig) -> Signer | None:
    """The DKIM signer configured by ``[delivery.dkim]``, or None."""
    if settings.dkim is None:
        return None
    from publisher.deliver.dkim import DkimSigner

    return DkimSigner.from_config(settings.dkim).sign
