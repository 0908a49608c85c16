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

- 2xx: ``sent``; 5xx: permanent, ``failed``; a 5.1.x "no such user" is ``bounced`` and
  the subscriber is marked ``bounced`` so they are not mailed again;
- 4xx, a dropped connection or a timeout: retried with backoff, up to ``max_attempts``;
- 421 or 4.7.x ("slow down"): retried like a 4xx, and the relay is paused for every
  process sharing the store (``throttle_seconds``, doubling while the relay keeps
  refusing); ``publisher status`` shows the pause.

Pacing (:mod:`publisher.deliver.limits`) is shared by the cluster: before each message a thread
waits for a slot of the cluster ``rate_limit``, of its relay and of its domain, and holds
one of the domain's connection slots. A relay that cannot be reached is no attempt: the
message goes to the next healthy relay (:mod:`publisher.deliver.relays`).

A stop (SIGTERM), an operator's pause (``publisher issues pause``, any process) or an
auto-pause (``watch``) lets each thread finish the message in flight, records the results
and puts the rest of its claimed batch back in the queue. The issue's status is read once a
second or every ``CHECK_RESULTS`` results; a paused issue gets no more claims.
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
from publisher.store import PAUSED, Store

MAX_ROUTES = 10  # relays tried for one message before the run gives up
PAUSE_CHECK_SECONDS = 1.0  # how stale the run's view of an operator's pause may be
CHECK_RESULTS = 25  # ...or how many results it may record before it looks (and ``watch``es)

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


Progress = Callable[[DeliveryResult], None]


def _outcome(recipient: Recipient, exc: DeliveryError) -> SendOutcome:
    return SendOutcome(
        recipient.delivery_id,
        False,
        exc.message,
        exc.permanent,
        exc.code,
        bounce=exc.permanent and is_bounce(exc.code, exc.message),
    )


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def _batch_size(settings: DeliveryConfig, workers: int) -> int:
    """The claim size: a slow rate must not hold a claim past half its lease (another
    worker would retake it)."""
    if settings.rate_limit <= 0:
        return settings.batch_size
    per_thread = settings.rate_limit / workers
    return max(1, min(settings.batch_size, int(per_thread * settings.lease_seconds / 2)))


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
    progress: Progress | None = None,
    relay_rates: dict[str, float] | None = None,
    watch: Callable[[], object] | None = None,
) -> DeliveryResult:
    """Send every due delivery of the issue; return the counts of this run.

    ``session`` is this process's registration: claims are made in its name, taking over
    those of workers that are gone, and its journal records each message as it goes.
    ``stop`` ends the run early: messages in flight are finished and recorded, claimed
    ones not yet sent go back to the queue. ``sign`` (DKIM) is applied to every message;
    ``progress`` is called with the running counts after each recorded group;
    ``relay_rates`` maps a relay's name to its ``rate``; ``watch`` (the auto-pause check)
    runs before each look at the issue's status.
    """
    return IssueSend(
        store, template, transport_factory, settings,
        base_url=base_url, make_token=make_token, clock=clock, label=label, session=session,
        stop=stop or threading.Event(), sign=sign, progress=progress, relay_rates=relay_rates,
        watch=watch,
    ).run()  # fmt: skip


class IssueSend:
    """One run of :func:`deliver_issue`: what its sending threads share, and their steps.

    Each thread loops :meth:`claim` then :meth:`send_batch`, which sends each message with
    :meth:`send_one` and hands the reply to the recorder, whose :meth:`on_recorded` counts
    it; :meth:`run` starts the threads and finishes (records, releases the pacing slots).
    """

    def __init__(
        self,
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
        stop: threading.Event,
        sign: Signer | None,
        progress: Progress | None,
        relay_rates: dict[str, float] | None,
        watch: Callable[[], object] | None = None,
    ) -> None:
        self.store, self.template, self.settings = store, template, settings
        self.transport_factory, self.sign, self.progress = transport_factory, sign, progress
        self.base_url, self.make_token, self.clock = base_url, make_token, clock
        self.label, self.session, self.stop = label, session, stop
        self.halt = threading.Event()  # set when one thread failed: the others stop too
        self.paused = threading.Event()  # set once the issue is seen paused (operator or guard)
        self.checked_at, self.unchecked, self.watch = time.monotonic(), 0, watch
        self.pacer = Pacer(store, settings, relay_rates)
        self.result, self.lock = DeliveryResult(), threading.Lock()
        self.owner, self.workers = session.worker_id, max(1, settings.connections)
        self.batch_size = _batch_size(settings, self.workers)
        self.recorder = Recorder(
            store, self.owner, clock,
            max_attempts=settings.max_attempts, retry_at=self.retry_at,
            journal=session.journal, on_recorded=self.on_recorded,
        )  # fmt: skip

    # -- the run -------------------------------------------------------------------------

    def run(self) -> DeliveryResult:
        """Run the sending threads until the issue is done or stopped; return the counts."""
        try:
            if self.workers == 1:
                self.run_worker(0)
            else:
                with ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="deliver"
                ) as pool:
                    futures = [pool.submit(self.run_worker, i) for i in range(self.workers)]
                    errors = [f.exception() for f in futures]
                    first = next((e for e in errors if e is not None), None)
                    if first is not None:
                        raise first
        finally:
            try:
                self.recorder.close()
            finally:
                self.pacer.release()  # slots leased ahead go to the processes still sending
        self.result.held = self.session.held(self.template.issue_id)
        return self.result

    def stopping(self) -> bool:
        """True once the run was stopped, a thread failed, recording failed or the issue
        was paused."""
        if self.stop.is_set() or self.halt.is_set() or self.recorder.error is not None:
            return True
        return self.pause_seen()

    def pause_seen(self) -> bool:
        """Whether the issue was paused (by an operator, or by ``watch``); the store is asked
        once a second or every ``CHECK_RESULTS`` results, whichever comes first."""
        now = time.monotonic()
        with self.lock:
            if self.paused.is_set() or (
                now - self.checked_at < PAUSE_CHECK_SECONDS and self.unchecked < CHECK_RESULTS
            ):
                return self.paused.is_set()
            self.checked_at, self.unchecked = now, 0
        if self.watch is not None:
            self.watch()
        # Only a pause: after a cancel the batch in flight finishes (its rest would be
        # released into a queue nobody sends).
        if self.store.issue_status(self.template.issue_id) == PAUSED:
            self.paused.set()
        return self.paused.is_set()

    def run_worker(self, index: int) -> None:
        """One sending thread: its own connection and domain gate; claim and send batches."""
        transport = self.transport_factory()
        gate = DomainGate(self.store, self.settings, f"{self.session.label}/{index}")
        try:
            transport.open()
            while not self.stopping():
                batch = self.claim(index)
                if not batch:
                    return
                self.send_batch(transport, gate, batch)
        except BaseException:
            self.halt.set()
            raise
        finally:
            transport.close()
            gate.leave()

    def claim(self, index: int) -> list[Recipient]:
        """Claim the next batch, taking over the claims of holders that are gone."""
        plan = self.session.plan(self.template.issue_id)
        batch = self.store.claim_batch(
            self.template.issue_id, f"{self.session.label}/{index}", self.clock(),
            self.batch_size, self.settings.lease_seconds, owner=self.owner,
            takeover=plan.takeover, lease_decides=plan.lease_decides,
        )  # fmt: skip
        if batch:
            with self.lock:
                self.result.recovered += sum(r.recovered for r in batch)
        return batch

    # -- one batch -----------------------------------------------------------------------

    def send_batch(self, transport: Transport, gate: DomainGate, batch: list[Recipient]) -> None:
        """Send a claimed batch; whatever was not handled goes back to the queue."""
        handled = 0
        lost: set[int] = set()
        gap = self.session.gap
        if self.settings.domains:  # one domain after another: fewer connection-slot changes
            batch = sorted(batch, key=lambda r: _domain(r.email))
        try:
            for recipient in batch:
                if self.stopping():
                    break
                if self.session.lease_at_risk() or self.session.gap != gap:
                    self.still_ours(batch, handled, lost)
                    gap = self.session.gap
                if recipient.delivery_id in lost:
                    handled += 1
                    continue
                message = self.message(recipient)
                name = f"{self.label}-{recipient.subscriber_id:07d}"
                try:
                    reply = self.send_one(transport, gate, recipient, message, name)
                except DeliveryError as exc:
                    handled += 1
                    self.recorder.add(_outcome(recipient, exc), recipient.attempts)
                    if is_throttle(exc.code, exc.message):
                        break  # the rest of the batch goes back to the queue
                else:
                    if reply is None:
                        break
                    handled += 1
                    self.recorder.add(
                        SendOutcome(recipient.delivery_id, True, reply), recipient.attempts
                    )
        finally:
            self.release(batch[handled:], lost)

    def still_ours(self, batch: list[Recipient], handled: int, lost: set[int]) -> None:
        """After a stop or a cut-off past half a lease: drop the claims taken over since."""
        rest = [r.delivery_id for r in batch[handled:]]
        lost |= set(rest) - self.store.verify_claims(rest, self.owner)
        self.session.renewed()

    def release(self, rest: list[Recipient], lost: set[int]) -> None:
        """Put the claims not handled back in the queue (not those taken over: lost)."""
        unsent = [r.delivery_id for r in rest if r.delivery_id not in lost]
        released = (
            self.store.release_claims(unsent, self.clock(), owner=self.owner) if unsent else 0
        )
        with self.lock:
            self.result.released += released
            self.result.lost += len(lost)

    def message(self, recipient: Recipient) -> bytes:
        """The recipient's personalised (and signed) message."""
        person = personal(
            self.base_url, recipient.subscriber_id, recipient.email, recipient.name,
            recipient.digest_id, self.make_token,
        )  # fmt: skip
        message = personalize(self.template, person)
        return self.sign(message) if self.sign is not None else message

    # -- one message ---------------------------------------------------------------------

    def send_one(
        self, transport: Transport, gate: DomainGate, recipient: Recipient, message: bytes,
        name: str,
    ) -> str | None:  # fmt: skip
        """Pace and send one message; None when stopping. A relay down is no attempt."""
        domain = _domain(recipient.email)
        if not gate.enter(domain, self.stopping):
            return None
        for _ in range(MAX_ROUTES):
            relay = transport.route() if isinstance(transport, RelayTransport) else None
            if not self.pacer.wait(self.pacer.buckets_for(relay, domain), self.stopping):
                return None
            if self.session.journal is not None:
                self.session.journal.started(recipient.delivery_id, recipient.attempts)
            try:
                reply = transport.send(self.settings.from_, recipient.email, message, name)
            except RelayDown:
                continue
            except DeliveryError as exc:
                if is_throttle(exc.code, exc.message):
                    self.slow_down(relay, exc.message)
                raise
            self.pacer.relay_bucket(relay or "default").accepted()
            return reply
        raise TransportError(f"no relay took the message to {domain} in {MAX_ROUTES} tries")

    def slow_down(self, relay: str | None, reply: str) -> None:
        """A 421 / 4.7.x: pause the relay for every process sharing the store."""
        bucket = self.pacer.relay_bucket(relay or "default")
        seconds = bucket.pause(self.settings.throttle_seconds, reply)
        with self.lock:
            self.result.throttled += 1
        self.store.set_throttle(
            self.clock() + timedelta(seconds=seconds), reply, self.session.label
        )

    # -- results -------------------------------------------------------------------------

    def retry_at(self, attempt: int, delivery_id: int) -> datetime:
        """When a failed attempt is due again (for the recorder)."""
        return self.clock() + retry_delay(attempt, delivery_id, self.settings.retry_base_seconds)

    def on_recorded(self, batch: list[tuple[SendOutcome, int]], lost: set[int]) -> None:
        """Count a recorded group of results (``lost``: claims taken over meanwhile)."""
        with self.lock:
            self.unchecked += len(batch)
            for outcome, attempt in batch:
                if outcome.delivery_id in lost:
                    self.result.lost += 1
                elif outcome.ok:
                    self.result.sent += 1
                elif outcome.permanent or attempt >= self.settings.max_attempts:
                    if outcome.bounce:
                        self.result.bounced += 1
                    else:
                        self.result.failed += 1
                else:
                    self.result.retrying += 1
            if self.progress is not None:
                self.progress(self.result)


def make_signer(settings: DeliveryConfig) -> Signer | None:
    """The DKIM signer configured by ``[delivery.dkim]``, or None."""
    if settings.dkim is None:
        return None
    from publisher.deliver.dkim import DkimSigner

    return DkimSigner.from_config(settings.dkim).sign
