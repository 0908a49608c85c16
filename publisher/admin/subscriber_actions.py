"""What an editor does to a subscriber from the console (HTTP I/O through services).

- ``/admin/subscribers/<id>/edit``: name, digests, frequency and topics, through the same
  service as the subscriber's own preferences page
  (:func:`publisher.services.subscriptions.set_subscription`);
- ``/admin/subscribers/<id>/unsubscribe``: from everything, as ``publisher subscribers
  remove`` does (:func:`publisher.services.subscribers.remove`), after a confirmation page;
- ``/admin/subscribers/<id>/erase``: the right to erasure
  (:func:`publisher.services.erasure.erase_subscriber`); the confirmation page asks for the
  address to be typed, since nothing brings the data back.

Each needs the editor role (viewers get 403, on the GET too); every change is audited with
the operator and their IP.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.compose.planning import FREQUENCIES
from publisher.compose.subscriptions import FormError, first
from publisher.errors import PublisherError
from publisher.models import Subscriber
from publisher.services import erasure, subscribers, subscriptions
from publisher.web.common import context, offload

from . import pages
from .auth import actor, audit, form_of, require


def _subscriber(app: App, subscriber_id: int) -> Subscriber:
    sub = app.store.subscriber_by_id(subscriber_id)
    if sub is None:
        raise PublisherError(f"no subscriber #{subscriber_id}")
    return sub


async def _load(request: Request) -> Subscriber | Response:
    """The subscriber of the path, or the page saying there is none (or they are erased)."""
    subscriber_id = int(request.path_params["subscriber_id"])
    try:
        sub: Subscriber = await offload(_subscriber, context(request).app, subscriber_id)
    except PublisherError as exc:
        return pages.message(request, "No such subscriber", [exc.message], 404)
    if sub.status == "erased":
        return pages.message(request, "Erased", [f"Subscriber #{sub.id} was erased: nothing "
                                                 "is left to change."], 409)  # fmt: skip
    return sub


def _edit_form(app: App, sub: Subscriber) -> dict[str, Any]:
    rows = app.store.subscription_rows(sub.id)
    return {
        "digests": [(d.id, d.title) for d in app.config.digests],
        "frequencies": FREQUENCIES,
        "topics": subscriptions.known_tags(app),
        "chosen_digests": [r["digest_id"] for r in rows],
        "chosen_topics": sorted({t for r in rows for t in r["tags"]}),
        "frequency": rows[0]["frequency"] if rows else FREQUENCIES[0],
        "name": sub.name,
    }


def _target(sub: Subscriber) -> str:
    return f"subscriber #{sub.id} {sub.email}"


@require("editor")
async def edit(request: Request) -> Response:
    """GET: the form; POST: set name, digests, frequency and topics."""
    sub = await _load(request)
    if isinstance(sub, Response):
        return sub
    app = context(request).app
    values = await offload(_edit_form, app, sub)
    if request.method == "GET":
        return pages.render(request, "subscriber_edit.html.j2", f"Edit {sub.email}", sub=sub,
                            errors={}, **values)  # fmt: skip
    form = form_of(request)
    wanted = {
        "name": first(form, "name"), "digests": form.get("digest", []),
        "frequency": first(form, "frequency"), "tags": form.get("tag", []),
    }  # fmt: skip
    try:
        updated = await offload(lambda: subscriptions.set_subscription(app, sub, **wanted))
    except FormError as exc:
        values.update(name=wanted["name"], chosen_digests=wanted["digests"],
                      chosen_topics=wanted["tags"], frequency=wanted["frequency"])  # fmt: skip
        return pages.render(request, "subscriber_edit.html.j2", f"Edit {sub.email}", 400,
                            sub=sub, errors=exc.errors, **values)  # fmt: skip
    if updated is None:
        return pages.message(request, "Not changed", [f"Subscriber #{sub.id} is gone."], 409)
    detail = (f"name {updated.name!r}; digests {' '.join(updated.digests) or 'none'}; "
              f"frequency {wanted['frequency'] or FREQUENCIES[0]}; topics {' '.join(wanted['tags']) or 'all'}")  # fmt: skip
    await audit(request, "subscriber.edit", _target(sub), detail)
    note = "Saved." if sub.status == "active" else f"Saved; digests unchanged (status {sub.status})."
    return pages.redirect(request, f"subscribers/{sub.id}", notice=note)


@require("editor")
async def unsubscribe(request: Request) -> Response:
    """GET: what unsubscribing does; POST: unsubscribe from every digest."""
    sub = await _load(request)
    if isinstance(sub, Response):
        return sub
    if request.method == "GET":
        return pages.render(
            request, "subscriber_confirm.html.j2", f"Unsubscribe {sub.email}", sub=sub,
            explain="They leave every digest at once: their queued deliveries are skipped and "
                    "nothing more is sent. Only they can come back, by signing up and confirming "
                    "(or you, with publisher subscribers add --reactivate).",
            button="Yes: unsubscribe", danger=False, typed=False, error="",
        )  # fmt: skip
    app = context(request).app
    try:
        outcome = await offload(lambda: subscribers.remove(app, sub.email))
    except PublisherError as exc:
        return pages.message(request, "Not unsubscribed", [exc.message], 409)
    await audit(request, "subscriber.unsubscribe", _target(sub), outcome.line)
    return pages.redirect(request, f"subscribers/{sub.id}", notice=outcome.line.capitalize() + ".")


@require("editor")
async def erase(request: Request) -> Response:
    """GET: what erasure does, and a field for the address; POST: erase, if it matches."""
    sub = await _load(request)
    if isinstance(sub, Response):
        return sub
    page = {
        "sub": sub, "button": "Erase for good", "danger": True, "typed": True,
        "explain": "The address and name are replaced by a placeholder, every subscription, "
                   "sign-up and bounce detail goes, and only a one-way hash of the address "
                   "stays on the suppression list so no import brings it back. Delivery counts "
                   "stay. This cannot be undone.",
    }  # fmt: skip
    if request.method == "GET":
        return pages.render(request, "subscriber_confirm.html.j2", f"Erase {sub.email}", error="", **page)
    typed = first(form_of(request), "confirm").strip().lower()
    if typed != sub.email.lower():
        return pages.render(request, "subscriber_confirm.html.j2", f"Erase {sub.email}", 400,
                            error="Type the subscriber's address exactly to erase it.", **page)  # fmt: skip
    who = actor(request)
    try:
        await offload(lambda: erasure.erase_subscriber(context(request).app, sub.id, actor=who))
    except PublisherError as exc:
        return pages.message(request, "Not erased", [exc.message], 409)
    return pages.redirect(request, f"subscribers/{sub.id}", notice=f"Subscriber #{sub.id} was erased.")


def routes() -> list[BaseRoute]:
    """Edit, unsubscribe and erase (each GET shows the form, each POST acts)."""
    base = "/admin/subscribers/{subscriber_id:int}"
    return [
        Route(f"{base}/edit", edit, methods=["GET", "POST"]),
        Route(f"{base}/unsubscribe", unsubscribe, methods=["GET", "POST"]),
        Route(f"{base}/erase", erase, methods=["GET", "POST"]),
    ]
