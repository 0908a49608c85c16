"""``/api/v1/issues``: list, get, statistics, and the send-scope actions (store I/O via services).

"Send now" only queues, as everywhere a web request is served: ``publisher serve`` never
holds a connection to a relay. A ``publisher worker`` or the daemon sends what is queued;
the answer says how many workers are alive, so a client can tell when nothing will go out.
Cancel, pause, resume and resend-failed are the CLI's :mod:`publisher.services.issues`.
"""

from __future__ import annotations

from publisher.api import models
from publisher.api.framework import ApiError, Call, Operation, Reply, next_link
from publisher.app import App
from publisher.errors import PublisherError
from publisher.models import Issue
from publisher.services import digests, engagement_report, guard, issues, listings, monitoring
from publisher.services.audit import record_audit


def issue_model(app: App, issue: Issue) -> models.Issue:
    """An issue with its delivery counts."""
    counts = digests.delivery_counts(app, issue.id)
    return models.Issue(
        id=issue.id,
        digest=issue.digest_id,
        period=issue.period,
        subject=issue.subject,
        status=issue.status,
        created_at=issue.created_at,
        articles=list(issue.article_ids),
        counts=models.Counts(**counts),
        pause_reason=guard.pause_reason(app, issue.id) if issue.status == "paused" else None,
    )


def _issue_id(call: Call) -> int:
    issue_id: int = call.path["issue_id"]
    try:
        issues.get_issue(call.app, issue_id)
    except PublisherError:
        raise ApiError(404, "not_found", f"no issue #{issue_id}") from None
    return issue_id


def list_issues(call: Call) -> Reply:
    """A page of issues, newest first."""
    q: models.IssueQuery = call.query
    page = listings.list_issues(
        call.app, digest=q.digest, status=q.status, after=q.cursor, limit=q.limit
    )
    body = models.IssuePage(
        data=[issue_model(call.app, i) for i in page.items], next_cursor=page.next_cursor
    )
    return Reply(body, headers=next_link(call.url, page.next_cursor))


def get_issue(call: Call) -> Reply:
    """One issue with its counts."""
    return Reply(issue_model(call.app, issues.get_issue(call.app, _issue_id(call))))


def _engagement(app: App, issue_id: int) -> models.Engagement:
    """The engagement figures of ``publisher stats``, in the API's model."""
    data = engagement_report.issue_engagement(app, issue_id).as_dict()
    opens = data["opens"]
    return models.Engagement(
        tracking=data["tracking"],
        clicks=data["clicks"],
        opens={k: opens[k] for k in ("human", "proxy", "automated")},
        opens_note=opens["note"],
        articles=[models.LinkClicks(**a) for a in data["articles"]],
        links=[models.LinkClicks(**link) for link in data["links"]],
        clicks_by_hour=[models.HourClicks(**row) for row in data["clicks_by_hour"]],
        proxy_snapshot=data["proxy_snapshot"],
    )


def issue_stats(call: Call) -> Reply:
    """An issue's delivery statistics (counts, failures by reply, first and last send) and
    its engagement (clicks human and automated, opens apart, per article and link)."""
    stats = digests.issue_stats(call.app, _issue_id(call))
    return Reply(
        models.IssueStats(
            issue=issue_model(call.app, stats.issue),
            failures=[models.Failure(reply=r, count=n) for r, n in stats.failures],
            first_sent_at=stats.first_sent_at,
            last_sent_at=stats.last_sent_at,
            engagement=_engagement(call.app, _issue_id(call)),
        )
    )


def send_now(call: Call) -> Reply:
    """Create the digest's due issue (when it has new articles) and queue its deliveries."""
    wanted: models.SendNow = call.body
    app = call.app
    try:
        app.config.digest(wanted.digest)
    except PublisherError as exc:
        raise ApiError(422, "invalid_request", exc.message) from None
    reports = issues.send_now(app, wanted.digest)
    record_audit(app, call.actor, "issue.send_now", wanted.digest,
                 "; ".join(f"#{r.issue.id} queued {r.planned}" if r.issue else r.note for r in reports))  # fmt: skip
    data = [
        models.Queued(
            issue=None if r.issue is None else issue_model(app, issues.get_issue(app, r.issue.id)),
            created=r.created,
            queued=r.planned,
            held=r.held,
            note=r.note,
        )
        for r in reports
    ]
    alive = monitoring.figures(app).workers.get("alive", 0)
    return Reply(models.SendNowResult(data=data, workers_alive=alive), 202)


def _action(call: Call, verb: str, affected: int, issue: Issue) -> Reply:
    record_audit(call.app, call.actor, f"issue.{verb}", f"issue #{issue.id}", f"{affected} deliveries")
    fresh = issues.get_issue(call.app, issue.id)
    return Reply(models.IssueAction(issue=issue_model(call.app, fresh), affected=affected))


def cancel(call: Call) -> Reply:
    """Skip the issue's queued deliveries (messages in flight finish)."""
    body: models.Cancel = call.body
    done = issues.cancel_issue(call.app, _issue_id(call), release_articles=body.release_articles)
    return _action(call, "cancel", done.skipped, done.issue)


def pause(call: Call) -> Reply:
    """Keep the issue's queue and send nothing until resumed."""
    done = issues.pause_issue(call.app, _issue_id(call))
    return _action(call, "pause", done.queued, done.issue)


def resume(call: Call) -> Reply:
    """Let a paused issue's queue go (the workers send it)."""
    done = issues.resume_issue(call.app, _issue_id(call))
    return _action(call, "resume", done.queued, done.issue)


def resend_failed(call: Call) -> Reply:
    """Queue the failed deliveries again (bounced addresses are not retried)."""
    issue, requeued = issues.requeue_failed(call.app, _issue_id(call))
    return _action(call, "resend_failed", requeued, issue)


ONE = "/issues/{issue_id:int}"
_ID = ("issue_id",)
_ACTIONS = [
    ("cancel", "cancelIssue", "Cancel an issue", models.Cancel, cancel),
    ("pause", "pauseIssue", "Pause an issue", models.Empty, pause),
    ("resume", "resumeIssue", "Resume a paused issue", models.Empty, resume),
    ("resend-failed", "resendFailed", "Queue an issue's failed deliveries again", models.Empty,
     resend_failed),
]  # fmt: skip
OPERATIONS = [
    Operation(
        "GET", "/issues", "listIssues", "List issues", "issues", "read", list_issues,
        {200: models.IssuePage}, query=models.IssueQuery, paged=True,
    ),
    Operation(
        "GET", ONE, "getIssue", "Get an issue with its delivery counts", "issues", "read",
        get_issue, {200: models.Issue}, ids=_ID, errors=(404,),
    ),
    Operation(
        "GET", ONE + "/stats", "issueStats", "An issue's delivery statistics", "stats", "read",
        issue_stats, {200: models.IssueStats}, ids=_ID, errors=(404,),
    ),
    Operation(
        "POST", "/issues/send-now", "sendNow", "Queue a digest's due issue now", "issues", "send",
        send_now, {202: models.SendNowResult}, body=models.SendNow, errors=(400, 409),
        description="Only queues: a `publisher worker` or the daemon sends. `workers_alive` "
        "0 means nothing will go out until one runs.",
    ),
    *[
        Operation(
            "POST", f"{ONE}/{verb}", op_id, summary, "issues", "send", handler,
            {200: models.IssueAction}, body=body, body_required=False, ids=_ID,
            errors=(400, 404, 409),
        )
        for verb, op_id, summary, body, handler in _ACTIONS
    ],
]  # fmt: skip
