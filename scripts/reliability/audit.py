"""The loss audit every reliability run ends with (chaos, load, fuzz).

Given the job ids the clients saw accepted (every 202) and the faults the run injected, it waits for
the work to drain and then checks, from the jobs table, the media bucket and the agents' logs:

- every accepted job reached a terminal state (`succeeded`, `failed`, `cancelled`): none lost,
  none stuck; and exactly one: no job was finished twice (agents log each terminal write they
  make as a `job.succeeded` or `job.failed` event, and a second one would be a doubled side
  effect);
- every succeeded job has exactly one output object under `outputs/{tenant}/{job}/`; no other job
  has more than one;
- no job was interrupted by scale-in: a job handed back by a draining agent counts as interrupted
  unless this run itself sent that agent its SIGTERM (the chaos suite's spot notices);
- every job in the table was acknowledged to a client (a retried submit made no second job);
- duplicate deliveries (a job's message received again: a second claim, or a redelivery the agent
  dropped) are counted and reported; they are allowed. Duplicate side effects are not: a second
  terminal write, a second output object, a job nobody asked for.

`audit(stack, accepted, faults)` returns a report; `print_report` prints it; `report["ok"]` says
whether the run passes; `finish` writes a suite's summary file and verdict line and gives its exit
code.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import events
from events import (AGENT_DRAINING, ATTEMPT_DISCARDED, DELIVERY_DROPPED, JOB_CLAIMED, JOB_FAILED,
                    JOB_HANDED_BACK, JOB_SUCCEEDED)

TERMINAL = {"succeeded", "failed", "cancelled"}
# Events an agent logs once per terminal write it made (a cancel observed by the agent is none).
TERMINAL_EVENTS = {JOB_SUCCEEDED, JOB_FAILED}
# Every event the audit counts.
COUNTED = (JOB_CLAIMED, *TERMINAL_EVENTS, JOB_HANDED_BACK, DELIVERY_DROPPED, ATTEMPT_DISCARDED,
           AGENT_DRAINING)


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def read_agent_logs(state: Path) -> dict:
    """Per job: claims (instance, time), terminal writes, hand-backs; per instance: SIGTERMs."""
    claims = defaultdict(list)
    terminal = defaultdict(list)
    handbacks = defaultdict(list)  # job -> [(instance, time, why)]
    dropped = Counter()  # redeliveries an agent saw and dropped
    discarded = Counter()  # attempts that finished after the job moved on (result discarded)
    sigterms = defaultdict(list)  # instance -> [time]
    for f in sorted((state / "logs" / "agents").glob("*.log")):
        instance = f.stem
        for rec in events.of(f, *COUNTED):
            event = rec["event"]
            t = _ts(rec["timestamp"]) if "timestamp" in rec else 0.0
            job = events.job_of(rec)
            if event == JOB_CLAIMED:
                claims[job].append((instance, t))
            elif event in TERMINAL_EVENTS:
                terminal[job].append((instance, t, event))
            elif event == JOB_HANDED_BACK:
                handbacks[job].append((instance, t, rec.get("why", "")))
            elif event == DELIVERY_DROPPED:
                dropped[job] += 1
            elif event == ATTEMPT_DISCARDED:
                discarded[job] += 1
            elif event == AGENT_DRAINING:
                sigterms[instance].append(t)
    return {"claims": claims, "terminal": terminal, "handbacks": handbacks, "dropped": dropped,
            "discarded": discarded, "sigterms": sigterms}


def wait_drained(stack, ids: set[str], timeout: float, say=print) -> dict[str, dict]:
    """Polls the table until every id is terminal or `timeout` passes; returns the records."""
    deadline = time.monotonic() + timeout
    last = 0.0
    while True:
        jobs = stack.jobs()
        open_ = [i for i in ids if jobs.get(i, {}).get("state") not in TERMINAL]
        if not open_ or time.monotonic() > deadline:
            return jobs
        if time.monotonic() - last > 10:
            say(f"==> waiting for {len(open_)} of {len(ids)} jobs to finish")
            last = time.monotonic()
        time.sleep(1.0)


def outputs(stack) -> dict[str, list[str]]:
    s3 = stack.boto("s3")
    out = defaultdict(list)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix="outputs/"):
        for o in page.get("Contents", []):
            parts = o["Key"].split("/")
            if len(parts) >= 4:
                out[parts[2]].append(o["Key"])
    return out


def audit(stack, accepted: set[str], faults: list[dict] | None = None, drain_timeout: float = 300,
          require_acknowledged: bool = True, say=print) -> dict:
    """Runs the audit. `faults` holds the SIGTERMs this run sent: {"kind": "sigterm",
    "instance": ..., "at": epoch seconds}; `require_acknowledged` makes a stored job no client saw
    accepted a failure (clients that retry with the same Idempotency-Key see every job)."""
    faults = faults or []
    started = time.monotonic()
    jobs = wait_drained(stack, set(accepted), drain_timeout, say)
    drain_secs = time.monotonic() - started
    logs = read_agent_logs(stack.state)
    outs = outputs(stack)

    lost, stuck = [], []
    states = Counter()
    double_finish, missing_output, extra_output, orphan_output = [], [], [], []
    for i in sorted(accepted):
        rec = jobs.get(i)
        if rec is None:
            lost.append(i)
            continue
        st = rec["state"]
        states[st] += 1
        if st not in TERMINAL:
            stuck.append((i, st))
        if len(logs["terminal"].get(i, [])) > 1:
            double_finish.append((i, logs["terminal"][i]))
        n = len(outs.get(i, []))
        if st == "succeeded" and n == 0:
            missing_output.append(i)
        if n > 1:
            extra_output.append((i, outs[i]))
        if st != "succeeded" and n == 1:
            orphan_output.append(i)
    unacknowledged = sorted(set(jobs) - set(accepted))

    # Interrupted by scale-in: a drained hand-back this run did not cause.
    ours = defaultdict(list)
    for f in faults:
        if f.get("kind") == "sigterm":
            ours[f["instance"]].append(f["at"])
    interrupted, drained_by_us = [], 0
    for job, events in logs["handbacks"].items():
        for instance, t, why in events:
            if why != "drained":
                continue
            # A drain we caused hands its jobs back within the grace period (plus slack).
            if any(0 <= t - at <= 180 for at in ours.get(instance, [])):
                drained_by_us += 1
            else:
                interrupted.append((job, instance, t))

    claims = {i: len(logs["claims"].get(i, [])) for i in accepted}
    redelivered = sum(max(0, c - 1) for c in claims.values()) + sum(
        logs["dropped"].get(i, 0) for i in accepted)
    attempts = Counter(int(jobs[i].get("attempts", 0)) for i in accepted if i in jobs)
    retried = sum(1 for i in accepted if i in jobs and int(jobs[i].get("attempts", 0)) > 1)
    handed_back = Counter(why for evs in logs["handbacks"].values() for _, _, why in evs)

    duplicate_side_effects = len(double_finish) + len(extra_output) + (
        len(unacknowledged) if require_acknowledged else 0)
    report = {
        "accepted": len(accepted),
        "stored": len(jobs),
        "states": dict(states),
        "lost": lost,
        "stuck": stuck,
        "drain_secs": round(drain_secs, 1),
        "double_finish": double_finish,
        "missing_output": missing_output,
        "extra_output": extra_output,
        "orphan_output": orphan_output,
        "unacknowledged": unacknowledged,
        "interrupted_by_scale_in": interrupted,
        "drained_by_fault": drained_by_us,
        "duplicate_deliveries": redelivered,
        "retried_jobs": retried,
        "attempts": dict(sorted(attempts.items())),
        "handed_back": dict(handed_back),
        "late_results_discarded": sum(logs["discarded"].values()),
        "duplicate_side_effects": duplicate_side_effects,
    }
    report["jobs_lost"] = len(lost) + len(stuck)
    report["ok"] = (report["jobs_lost"] == 0 and not double_finish and not missing_output
                    and not extra_output and not interrupted and duplicate_side_effects == 0)
    return report


def print_report(r: dict, title: str = "loss audit") -> None:
    ok = lambda b: "ok" if b else "FAIL"  # noqa: E731
    rows = [
        ("jobs accepted (202)", r["accepted"], ""),
        ("jobs stored", r["stored"], ok(not r["unacknowledged"]) + (
            f" ({len(r['unacknowledged'])} never acknowledged)" if r["unacknowledged"] else "")),
        ("terminal states", ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items())), ""),
        ("jobs lost or stuck", r["jobs_lost"], ok(r["jobs_lost"] == 0)),
        ("jobs finished twice", len(r["double_finish"]), ok(not r["double_finish"])),
        ("succeeded without exactly one output", len(r["missing_output"]) + len(r["extra_output"]),
         ok(not r["missing_output"] and not r["extra_output"])),
        ("interrupted by scale-in", len(r["interrupted_by_scale_in"]), ok(not r["interrupted_by_scale_in"])),
        ("duplicate deliveries (allowed)", r["duplicate_deliveries"], "reported"),
        ("duplicate side effects", r["duplicate_side_effects"], ok(r["duplicate_side_effects"] == 0)),
        ("jobs retried (attempts > 1)", r["retried_jobs"], "reported"),
        ("hand-backs by reason", ", ".join(f"{k or '?'} {v}" for k, v in r["handed_back"].items()) or "0", "reported"),
        ("late results discarded", r["late_results_discarded"], "reported"),
        ("drain time after the run", f"{r['drain_secs']} s", ""),
    ]
    w = max(len(a) for a, _, _ in rows)
    print(f"\n{title}")
    print(f"  {'check'.ljust(w)}  {'value':>22}  result")
    for a, b, c in rows:
        print(f"  {a.ljust(w)}  {str(b):>22}  {c}")
    for key in ("lost", "stuck", "double_finish", "missing_output", "extra_output", "unacknowledged",
                "interrupted_by_scale_in"):
        if r[key]:
            print(f"  {key}: {r[key][:10]}")
    print(f"  AUDIT {'PASSED' if r['ok'] else 'FAILED'}: {r['jobs_lost']} jobs lost, "
          f"{r['duplicate_side_effects']} duplicate side effects")


def finish(suite: str, ok: bool, took: float, report: dict, summary_path: Path | None, **figures) -> int:
    """The end every suite shares: the summary file (the suite's figures, its time and the audit's
    counts) when asked for, the verdict line, and the exit code."""
    if summary_path:
        audit_counts = {k: v for k, v in report.items() if not isinstance(v, list)}
        summary = {"suite": suite, **figures, "seconds": round(took, 1), "audit": audit_counts}
        summary_path.write_text(json.dumps(summary, indent=2, default=str))
    print(f"\n{suite} {'passed' if ok else 'FAILED'} in {took:.0f} s")
    return 0 if ok else 1
