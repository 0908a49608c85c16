"""``/api/v1/subscribers``: list, get, create, update, erase (store and mail I/O via services).

Each handler translates between the API's models and the services the CLI, the console
and the subscriber pages use: the search is :mod:`publisher.services.directory`, a
double opt-in is the sign-up form's :func:`~publisher.services.subscriptions.subscribe`,
a confirmed add is ``subscribers add``, an update is the preferences page's
:func:`~publisher.services.subscriptions.set_subscription`, and delete is erasure.
Every change is audited as ``token:<name>`` with the client's address.
"""

from __future__ import annotations

from publisher.api import models
from publisher.api.framework import ApiError, Call, Operation, Reply, next_link
from publisher.models import Subscriber
from publisher.services import directory, erasure, subscribers, subscriptions
from publisher.services.audit import record_audit
from publisher.services.directory import SubscriberRecord


def _summary(sub: Subscriber) -> models.Subscriber:
    return models.Subscriber(
        id=sub.id,
        email=sub.email,
        name=sub.name,
        status=sub.status,
        created_at=sub.created_at,
        digests=list(sub.digests),
    )


def _detail(record: SubscriberRecord) -> models.SubscriberDetail:
    return models.SubscriberDetail(
        **_summary(record.subscriber).model_dump(),
        subscriptions=[
            models.Subscription(digest=s.digest, frequency=s.frequency, topics=list(s.topics))
            for s in record.subscriptions
        ],
    )


def _record(call: Call) -> SubscriberRecord:
    record = directory.subscriber_record(call.app, call.path["subscriber_id"])
    if record is None:
        raise ApiError(404, "not_found", f"no subscriber #{call.path['subscriber_id']}")
    return record


def list_subscribers(call: Call) -> Reply:
    """A page of the directory search."""
    q: models.SubscriberQuery = call.query
    page = directory.search_subscribers(
        call.app,
        query=q.q,
        digest=q.digest,
        status=q.status,
        topic=q.topic,
        after=q.cursor,
        limit=q.limit,
    )
    body = models.SubscriberPage(
        data=[_summary(s) for s in page.items], next_cursor=page.next_cursor
    )
    return Reply(body, headers=next_link(call.url, page.next_cursor))


def get_subscriber(call: Call) -> Reply:
    """One subscriber with their subscriptions."""
    return Reply(_detail(_record(call)))


def create_subscriber(call: Call) -> Reply:
    """Double opt-in (202: the confirmation is mailed) or, asked for, confirmed at once
    (201 for a new address, 200 when an existing subscriber joined the digests)."""
    new: models.NewSubscriber = call.body
    app = call.app
    digests = new.digests or [d.id for d in app.config.digests]
    if new.status == "pending":
        if new.frequency is not None:
            raise ApiError(
                422, "invalid_request", "frequency: set it once confirmed (PATCH), not on sign-up"
            )
        sub = subscriptions.subscribe(app, new.email, new.name, digests, new.topics)
        assert sub is not None  # no rate limit is passed, so it is never refused
        record_audit(app, call.actor, "subscriber.invite", sub.email, f"digests={','.join(digests)}")
        record = directory.subscriber_record(app, sub.id)
        assert record is not None
        return Reply(_detail(record), 202, {"Location": f"subscribers/{sub.id}"})
    existed = directory.find_by_address(app, new.email) is not None
    outcome = subscribers.add(
        app,
        new.email,
        name=new.name,
        digests=digests,
        frequency=new.frequency,
        tags=new.topics or None,
    )
    if not outcome.ok:
        raise ApiError(409, "refused", outcome.line)
    record = directory.find_by_address(app, new.email)
    assert record is not None
    record_audit(app, call.actor, "subscriber.add", record.subscriber.email, outcome.line)
    status = 200 if existed else 201
    return Reply(_detail(record), status, {"Location": f"subscribers/{record.subscriber.id}"})


def update_subscriber(call: Call) -> Reply:
    """Change only the fields given (see :class:`~publisher.api.models.SubscriberChange`),
    as ``subscribers add --digest``, ``subscribers remove --digest`` and ``subscribers set``
    do: leaving every digest is unsubscribing, and nobody who left is re-subscribed here."""
    change: models.SubscriberChange = call.body
    app = call.app
    sub = _record(call).subscriber
    if sub.status == "erased":
        raise ApiError(409, "erased", f"subscriber #{sub.id} was erased")
    lines = []
    if change.digests is not None:
        wanted = list(dict.fromkeys(change.digests))
        for digest_id in wanted:
            app.config.digest(digest_id)  # ConfigError (422) before anything changes
        joined = [d for d in wanted if d not in sub.digests]
        left = [d for d in sub.digests if d not in wanted]
        if (joined or left) and sub.status != "active":
            raise ApiError(
                409,
                "not_active",
                f"subscriber #{sub.id} is {sub.status}: digests change only while active "
                "(subscribe them again with POST /subscribers)",
            )
        if joined:
            lines.append(subscribers.add(app, sub.email, digests=joined).line)
        for digest_id in left:
            lines.append(subscribers.remove(app, sub.email, digest=digest_id).line)
    if change.name is not None or change.frequency or change.topics is not None:
        now = directory.subscriber_record(app, sub.id)
        if (change.frequency or change.topics is not None) and now and not now.subscriptions:
            raise ApiError(409, "no_subscriptions", f"subscriber #{sub.id} has no digests to set")
        outcome = subscribers.change(
            app, sub.email, frequency=change.frequency, tags=change.topics, name=change.name
        )
        lines.append(outcome.line)
    if lines:
        record_audit(app, call.actor, "subscriber.update", sub.email, "; ".join(lines))
    return Reply(_detail(_record(call)))


def erase_subscriber(call: Call) -> Reply:
    """Erasure: the address and name are gone; only a hash stays, on the suppression list."""
    _record(call)
    erasure.erase_subscriber(call.app, call.path["subscriber_id"], actor=call.actor)
    return Reply(None, 204)


PATH = "/subscribers/{subscriber_id:int}"
OPERATIONS = [
    Operation(
        "GET", "/subscribers", "listSubscribers", "Search subscribers", "subscribers", "read",
        list_subscribers, {200: models.SubscriberPage}, query=models.SubscriberQuery, paged=True,
        description="Newest first, by keyset pages: pass `next_cursor` as `cursor`.",
    ),
    Operation(
        "POST", "/subscribers", "createSubscriber", "Add a subscriber", "subscribers", "write",
        create_subscriber,
        {202: models.SubscriberDetail, 201: models.SubscriberDetail, 200: models.SubscriberDetail},
        body=models.NewSubscriber, errors=(400, 409, 503),
        description="`status: pending` (default) mails a confirmation link (double opt-in); "
        "`confirmed` subscribes at once and refuses an address that left, bounced, complained "
        "or was erased.",
    ),
    Operation(
        "GET", PATH, "getSubscriber", "Get a subscriber", "subscribers", "read",
        get_subscriber, {200: models.SubscriberDetail}, ids=("subscriber_id",), errors=(404,),
    ),
    Operation(
        "PATCH", PATH, "updateSubscriber", "Change a subscriber's digests, frequency, topics or name",
        "subscribers", "write", update_subscriber, {200: models.SubscriberDetail},
        body=models.SubscriberChange, ids=("subscriber_id",), errors=(400, 404, 409),
    ),
    Operation(
        "DELETE", PATH, "eraseSubscriber", "Erase a subscriber (right to erasure)", "subscribers",
        "write", erase_subscriber, {204: None}, ids=("subscriber_id",), errors=(404,),
    ),
]  # fmt: skip
