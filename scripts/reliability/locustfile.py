"""Locust users for scripts/load: together they send the job server a set number of requests a second, a mix
of valid jobs (each with its own Idempotency-Key), invalid ones of every kind the API refuses, and
status reads. The shape steps from the base rate to ten times it, comes back, then ramps up again.

Settings come from the environment: RF_API_KEY, RF_PLAN (`short` or `long`), RF_BASE_RATE, RF_OUT (a JSON file
written at the end: accepted job ids, valid-submit latencies, outcome counts)."""

from __future__ import annotations

import json
import os
import random
import threading
import uuid

from locust import HttpUser, LoadTestShape, constant_throughput, events, task

KEY = os.environ.get("RF_API_KEY", "")
PLAN = os.environ.get("RF_PLAN", "short")
OUT = os.environ.get("RF_OUT", "load-result.json")

# (seconds, requests a second at the start, at the end). Each user sends one request every
# PERIOD seconds at most, so a stage of R requests a second runs R * PERIOD users, and the offered
# rate holds while a request takes up to PERIOD seconds.
PERIOD = 4
# The base rate (RF_BASE_RATE requests a second): the local stack's one emulator process serves
# every AWS call of the job server, the agents and the scaler, so its ceiling, not the job
# server's, sets how high the step can go here (docs/RELIABILITY.md).
BASE = float(os.environ.get("RF_BASE_RATE", "0.3"))
STAGES = {
    "short": [(8, 1, 1), (12, 10, 10), (4, 1, 1), (12, 1, 10)],
    "long": [(30, 1, 1), (60, 10, 10), (20, 1, 1), (60, 1, 10), (10, 1, 1)],
}[PLAN]
STAGES = [(secs, start * BASE, end * BASE) for secs, start, end in STAGES]

lock = threading.Lock()
accepted: list[str] = []
submit_ms: list[float] = []
outcomes: dict[str, int] = {}
server_errors: list[str] = []
rng = random.Random(1234)


def count(name: str) -> None:
    with lock:
        outcomes[name] = outcomes.get(name, 0) + 1


def spec(i: int) -> dict:
    return {
        "output": {"width": 192, "height": 108, "fps": 10},
        "scenes": [{"duration": 1.0, "background": {"color": "#1d3557"},
                    "texts": [{"text": f"load {i}", "size": 0.2}]}],
        "metadata": {"source": "scripts/load"},
    }


AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {**AUTH, "Content-Type": "application/json"}
# Invalid requests, each with the status the API must answer.
INVALID = [
    ("malformed json", JSON, b'{"output": {"width": 1280,', 400),
    ("unknown field", JSON, json.dumps({**spec(0), "colour": "red"}).encode(), 422),
    ("zero width", JSON, json.dumps({**spec(0), "output": {"width": 0, "height": 108}}).encode(), 422),
    ("no scenes", JSON, json.dumps({**spec(0), "scenes": []}).encode(), 422),
    ("bad colour", JSON, json.dumps({**spec(0), "scenes": [{"duration": 1.0, "background": {"color": "blue-ish"}}]}).encode(), 422),
    ("no key", {"Content-Type": "application/json"}, json.dumps(spec(0)).encode(), 401),
    ("wrong key", {"Authorization": "Bearer rfk_0000000000000000_00", "Content-Type": "application/json"}, json.dumps(spec(0)).encode(), 401),
    ("not json", {**AUTH, "Content-Type": "text/plain"}, json.dumps(spec(0)).encode(), 415),
    ("too large", JSON, json.dumps({**spec(0), "metadata": {"pad": "x" * 300_000}}).encode(), 413),
    ("bad idempotency key", {**JSON, "Idempotency-Key": "has space"}, json.dumps(spec(0)).encode(), 400),
]


class Client(HttpUser):
    wait_time = constant_throughput(1.0 / PERIOD)

    @task(15)
    def submit_valid(self) -> None:
        body = json.dumps(spec(rng.randrange(10**6))).encode()
        headers = {**JSON, "Idempotency-Key": f"load-{uuid.uuid4()}"}
        # A 5xx is counted against the run, and then retried with the same Idempotency-Key as the
        # API asks, so that a job stored before the answer failed is still acknowledged.
        for _ in range(3):
            with self.client.post("/v1/jobs", data=body, headers=headers, name="POST /v1/jobs (valid)",
                                  catch_response=True, timeout=30) as r:
                if r.status_code == 202:
                    with lock:
                        accepted.append(r.json()["id"])
                        submit_ms.append(r.elapsed.total_seconds() * 1000)
                    count("valid 202")
                    r.success()
                    return
                self.unexpected(r, "valid")
                if r.status_code < 500 and r.status_code != 0:
                    return

    @task(4)
    def submit_invalid(self) -> None:
        name, headers, body, want = rng.choice(INVALID)
        with self.client.post("/v1/jobs", data=body, headers=headers, name=f"POST /v1/jobs ({name})",
                              catch_response=True, timeout=30) as r:
            if r.status_code == want:
                count(f"invalid {want}")
                r.success()
            else:
                self.unexpected(r, name)

    @task(1)
    def read(self) -> None:
        with lock:
            job = rng.choice(accepted) if accepted else "job_00000000000000000000000000000000"
        with self.client.get(f"/v1/jobs/{job}", headers=AUTH, name="GET /v1/jobs/{id}",
                             catch_response=True, timeout=30) as r:
            if r.status_code in (200, 404):
                count(f"read {r.status_code}")
                r.success()
            else:
                self.unexpected(r, "read")

    def unexpected(self, r, what: str) -> None:
        count(f"unexpected {r.status_code}")
        if r.status_code >= 500 or r.status_code == 0:
            with lock:
                server_errors.append(f"{what}: {r.status_code} {r.text[:200]}")
        r.failure(f"{what}: unexpected {r.status_code}")


class StepAndRamp(LoadTestShape):
    def tick(self):
        t = self.get_run_time()
        for secs, start, end in STAGES:
            if t < secs:
                rate = start + (end - start) * t / secs
                return max(round(rate * PERIOD), 1), 100
            t -= secs
        return None


@events.test_stop.add_listener
def write_result(environment, **_kw) -> None:
    with lock:
        data = {"accepted": accepted, "submit_ms": submit_ms, "outcomes": outcomes,
                "server_errors": server_errors[:50],
                "requests": environment.stats.total.num_requests,
                "failures": environment.stats.total.num_failures,
                "duration_secs": sum(s for s, _, _ in STAGES)}
    with open(OUT, "w") as f:
        json.dump(data, f)
