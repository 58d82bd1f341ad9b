"""The structured events the binaries log, as the reliability tools read them: each log line is one
tracing JSON object, with the event's name as the top-level `event` field (core/src/events.rs names
them; test_events.py checks these constants are the same), `message` beside it for people, and a
job's id as `job_id`, top-level or in `span`. A reader matches the event, never the message text,
so rewording a log line cannot make an audit undercount."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

# An agent claimed a job (`job_id`, `attempt`): the start of an attempt.
JOB_CLAIMED = "job.claimed"
# An agent recorded a job `succeeded` (`job_id`).
JOB_SUCCEEDED = "job.succeeded"
# An agent recorded a job `failed` (`job_id`, `code`).
JOB_FAILED = "job.failed"
# An agent put a running job back to queued for another worker (`job_id`, `why`).
JOB_HANDED_BACK = "job.handed_back"
# An agent dropped a redelivery of a job it or another worker holds or finished (`job_id`).
DELIVERY_DROPPED = "delivery.dropped"
# An attempt ended after its job moved on; its result was discarded (`job_id`).
ATTEMPT_DISCARDED = "attempt.discarded"
# An agent started draining: SIGTERM or a termination notice (`why`).
AGENT_DRAINING = "agent.draining"
# One scaler tick with every input and the decision (`tick`).
SCALER_TICK = "scaler.tick"
# One HTTP request the job server answered (`status`, `path`).
HTTP_REQUEST = "http.request"

ALL = frozenset({
    JOB_CLAIMED, JOB_SUCCEEDED, JOB_FAILED, JOB_HANDED_BACK, DELIVERY_DROPPED, ATTEMPT_DISCARDED,
    AGENT_DRAINING, SCALER_TICK, HTTP_REQUEST,
})


def read(path: Path) -> Iterator[dict]:
    """The JSON objects of a log file, in order; other lines (and a missing file) yield nothing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            yield json.loads(line)
        except ValueError:
            continue


def of(path: Path, *names: str) -> Iterator[dict]:
    """The events of a log file named one of `names`."""
    return (rec for rec in read(path) if rec.get("event") in names)


def job_of(rec: dict) -> str | None:
    """The job an event is about: its `job_id`, or its span's."""
    if "job_id" in rec:
        return rec["job_id"]
    span = rec.get("span") or {}
    return span.get("job_id")
