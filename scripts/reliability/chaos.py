"""The chaos suite: one local stack, five faults in turn, each during a burst of jobs, then the loss
audit. Run through scripts/chaos, which owns the state directory and stops everything on exit.

1. kill -9 of random busy agents during a burst (the supervisor restarts them, as systemd would);
2. SIGTERM of busy agents (a spot notice or scale-in), one job short enough to finish within the
   drain grace, one long enough to be handed back past it;
3. the job server killed (-9) and restarted during submissions, clients retrying with the same
   Idempotency-Key;
4. the scaler killed and restarted a while later (the fleet holds; nothing is lost);
5. AWS faults on SQS, DynamoDB and S3 (throttling, 5xx, lost responses, latency) injected by a
   seeded proxy between every service and the emulator.

The proxy runs in AWS-rules mode throughout (awsrules.py): AWS's default quotas, page and batch
limits, and the launch-hook lifecycle apply to every phase.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit import audit, finish, print_report, wait_drained  # noqa: E402
from rfstack import arguments, Api, Stack, free_port, log, small_spec, spawn  # noqa: E402

GRACE_SECS = 4

SIZES = {
    "short": dict(seconds=1.0, size=(192, 108), fps=10),
    # A few seconds of rendering on a busy two-core machine: finishes within the grace.
    "medium": dict(seconds=6.0, size=(640, 360), fps=25),
    # Well past the grace.
    "long": dict(seconds=90.0, size=(1280, 720), fps=30),
}

PLANS = {
    "short": dict(max_workers=3, burst=14, kills=2, sigterms=1, restarts=1, submit_clients=4,
                  submits_each=4, pace=0.4, scaler_pause=8, aws_jobs=16, aws_seconds=60),
    "long": dict(max_workers=4, burst=40, kills=6, sigterms=3, restarts=3, submit_clients=6,
                 submits_each=10, pace=0.7, scaler_pause=30, aws_jobs=60, aws_seconds=180),
}

# The launch hook the fault proxy holds new instances in. This run names it, before any stack
# exists, and gives the same name to the proxy and (by --service-env) to the agents.
LAUNCH_HOOK = "renderfleet-local-launch"

AWS_FAULTS = {
    svc: {"throttle": 0.05, "error": 0.04, "lost": 0.01, "latency": 0.15, "latency_ms": [50, 400]}
    for svc in ("sqs", "dynamodb", "s3")
}


class Run:
    def __init__(self, stack: Stack, proxy_url: str, seed: int):
        self.stack = stack
        self.api = Api(stack.api_url, stack.api_key)
        self.proxy_url = proxy_url
        self.rng = random.Random(seed)
        self.accepted: set[str] = set()
        self.faults: list[dict] = []
        self.rows: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self.n = 0
        self.seed = seed
        self.job_server = None  # the job server we restarted, once we have
        self.failures: list[str] = []

    # -- submitting -----------------------------------------------------------------------
    def submit(self, kind: str, timeout: float = 60.0, events: list | None = None) -> str:
        with self.lock:
            self.n += 1
            i = self.n
        key = f"chaos-{self.seed}-{i}"
        job, tries = self.api.submit_until_accepted(small_spec(i, **SIZES[kind]), key,
                                                    time.monotonic() + timeout, events)
        if job is None:
            raise RuntimeError(f"submit {key} not accepted within {timeout} s ({tries} tries)")
        with self.lock:
            self.accepted.add(job)
        return job

    def burst(self, kinds: list[str], workers: int = 4) -> list[str]:
        with ThreadPoolExecutor(workers) as ex:
            return list(ex.map(self.submit, kinds))

    def running(self) -> dict[str, list[str]]:
        """Instance -> jobs it runs now, from the table."""
        out: dict[str, list[str]] = {}
        for j in self.stack.jobs().values():
            if j.get("state") == "running" and j.get("instance_id"):
                out.setdefault(j["instance_id"], []).append(j["id"])
        return out

    def wait_terminal(self, ids, timeout: float) -> dict[str, dict]:
        """Waits quietly until every id is terminal or `timeout` passes; returns the table."""
        return wait_drained(self.stack, set(ids), timeout, say=lambda _message: None)

    # -- 1. kill -9 of busy agents during a burst ---------------------------------------------
    def kill_agents(self, plan: dict) -> None:
        log(f"fault 1: kill -9 of {plan['kills']} busy agents during a burst of {plan['burst']} jobs")
        kinds = ["short", "medium"] * (plan["burst"] // 2)
        t = threading.Thread(target=self.burst, args=(kinds,))
        t.start()
        killed, held = 0, []
        deadline = time.monotonic() + 90
        while killed < plan["kills"] and time.monotonic() < deadline:
            time.sleep(2.5)
            agents = self.stack.agents()
            busy = [(i, jobs) for i, jobs in self.running().items() if i in agents]
            if not busy:
                continue
            instance, jobs = self.rng.choice(sorted(busy))
            pid = agents[instance]
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed += 1
            held += jobs
            self.faults.append({"kind": "kill9", "instance": instance, "pid": pid, "at": time.time(), "jobs": jobs})
        t.join()
        jobs = self.wait_terminal(held, 120)
        held = sorted(set(held))
        rerun = sum(1 for j in held if int(jobs.get(j, {}).get("attempts", 0)) >= 2)
        done = sum(1 for j in held if jobs.get(j, {}).get("state") == "succeeded")
        self.rows.append(("kill -9 of a busy agent", str(killed),
                          f"{len(held)} jobs on them; {done} succeeded, {rerun} re-rendered elsewhere"))

    # -- 2. SIGTERM of busy agents ------------------------------------------------------------------
    def sigterm_agents(self, plan: dict) -> None:
        log(f"fault 2: SIGTERM of busy agents, {plan['sigterms']} within and {plan['sigterms']} beyond the {GRACE_SECS} s grace")
        within = beyond = handed = finished = 0
        for kind in ["medium", "long"] * plan["sigterms"]:
            job = self.submit(kind)
            deadline = time.monotonic() + 60
            instance = None
            while time.monotonic() < deadline:
                rec = self.stack.jobs().get(job, {})
                if rec.get("state") == "running" and rec.get("instance_id") in self.stack.agents():
                    instance = rec["instance_id"]
                    break
                if rec.get("state") in ("succeeded", "failed"):
                    break
                time.sleep(0.3)
            if instance is None:
                continue
            pid = self.stack.agents()[instance]
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            self.faults.append({"kind": "sigterm", "instance": instance, "pid": pid, "at": time.time(), "jobs": [job]})
            if kind == "medium":
                within += 1
            else:
                beyond += 1
            rec = self.wait_terminal({job}, 120).get(job, {})
            if int(rec.get("attempts", 0)) >= 2:
                handed += 1
            elif rec.get("state") == "succeeded":
                finished += 1
        self.rows.append(("SIGTERM of a busy agent (spot notice)", f"{within + beyond}",
                          f"{finished} finished in place within the grace, {handed} handed back past it and re-rendered"))

    # -- 3. the job server killed and restarted during submissions ------------------------------
    def restart_job_server(self, plan: dict) -> None:
        log(f"fault 3: the job server killed and restarted {plan['restarts']} times during submissions")
        argv, env = self.stack.restartable("job_server")
        current_pid = self.stack.pids["job_server"]
        events: list = []

        def client(n: int) -> None:
            for _ in range(n):
                self.submit("short", timeout=90, events=events)
                time.sleep(plan["pace"])

        with ThreadPoolExecutor(plan["submit_clients"]) as ex:
            futs = [ex.submit(client, plan["submits_each"]) for _ in range(plan["submit_clients"])]
            downtimes = []
            for _ in range(plan["restarts"]):
                time.sleep(1.0)
                t0 = time.monotonic()
                if self.job_server is None:
                    os.kill(current_pid, signal.SIGKILL)
                else:
                    self.stack.stop_owned(self.job_server, signal.SIGKILL)
                time.sleep(1.0)
                self.job_server = self.stack.spawn(argv, env, self.stack.state / "logs" / "job-server.log")
                while True:
                    try:
                        urllib.request.urlopen(self.stack.api_url + "/healthz", timeout=1).read()
                        break
                    except OSError:
                        time.sleep(0.05)
                downtimes.append(time.monotonic() - t0)
                self.faults.append({"kind": "job_server_kill", "at": time.time()})
            for f in futs:
                f.result()
        retried = len(events)
        self.rows.append(("job server kill -9 + restart", str(plan["restarts"]),
                          f"{plan['submit_clients'] * plan['submits_each']} submits, {retried} failed tries retried "
                          f"with the same Idempotency-Key; down {max(downtimes):.1f} s at most"))

    # -- 4. the scaler stopped for a while ------------------------------------------------------------
    def pause_scaler(self, plan: dict) -> None:
        log(f"fault 4: the scaler killed for {plan['scaler_pause']} s, then restarted")
        first = self.burst(["medium"] * 3)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.running():
            time.sleep(0.5)
        argv, env = self.stack.restartable("scaler")
        before = self.stack.desired()
        os.kill(self.stack.pids["scaler"], signal.SIGKILL)
        t0 = time.time()
        self.faults.append({"kind": "scaler_kill", "at": t0})
        during = self.burst(["short"] * 4)
        seen = set()
        end = time.monotonic() + plan["scaler_pause"]
        while time.monotonic() < end:
            seen.add(self.stack.desired())
            time.sleep(1)
        jobs = self.stack.jobs()
        done_during = sum(1 for j in first + during if jobs.get(j, {}).get("state") == "succeeded")
        self.stack.spawn(argv, env, self.stack.state / "logs" / "scaler.log")
        self.wait_terminal(set(first + during), 120)
        held = all(d == before for d in seen)
        self.rows.append(("scaler killed, restarted later", f"1 ({plan['scaler_pause']} s down)",
                          f"fleet {'held' if held else 'CHANGED'} at desired/instances {before}; "
                          f"{done_during} of {len(first + during)} jobs finished while it was down"))
        if not held:
            self.failures.append(f"the fleet changed while the scaler was down: {sorted(seen)}")

    # -- 5. AWS faults ------------------------------------------------------------------------------
    def set_faults(self, config: dict) -> dict:
        req = urllib.request.Request(self.proxy_url + "/__faults", data=json.dumps(config).encode(), method="PUT")
        return json.loads(urllib.request.urlopen(req, timeout=5).read())

    def aws_faults(self, plan: dict) -> None:
        log(f"fault 5: throttling, 5xx, lost responses and latency on SQS, DynamoDB and S3 for {plan['aws_jobs']} jobs")
        base = self.set_faults({"seed": self.seed, "services": {}})["counts"]
        self.set_faults({"seed": self.seed, "services": AWS_FAULTS})
        events: list = []
        kinds = ["short"] * (plan["aws_jobs"] * 3 // 4) + ["medium"] * (plan["aws_jobs"] // 4)
        with ThreadPoolExecutor(4) as ex:
            ids = list(ex.map(lambda k: self.submit(k, timeout=120, events=events), kinds))
        self.wait_terminal(set(ids), plan["aws_seconds"])
        counts = self.set_faults({"seed": self.seed, "services": {}})["counts"]
        for svc in ("sqs", "dynamodb", "s3"):
            c = {k: counts.get(svc, {}).get(k, 0) - base.get(svc, {}).get(k, 0)
                 for k in ("requests", "throttle", "error", "lost", "latency")}
            self.rows.append((f"AWS faults on {svc}", str(c["throttle"] + c["error"] + c["lost"] + c["latency"]),
                              f"of {c['requests']} calls: {c['throttle']} throttled, {c['error']} 5xx, "
                              f"{c['lost']} lost responses, {c['latency']} delayed"))
        self.rows.append(("  clients during AWS faults", str(len(ids)),
                          f"jobs accepted; {len(events)} submit tries answered 5xx/503 and retried"))


def main() -> int:
    a = arguments().parse_args()
    plan = PLANS["short" if a.short else "long"]
    t_start = time.monotonic()

    moto_port, proxy_port = free_port(), free_port()
    # The proxy runs in AWS-rules mode too (quotas, limits, the launch-hook lifecycle): each agent
    # call weighs 1, so the quotas press as on a fleet of this size.
    rules = a.state_dir / "aws-rules.json"
    rules.write_text(json.dumps({
        "model_workers": plan["max_workers"], "local_workers": plan["max_workers"],
        "launch_hook": LAUNCH_HOOK, "launch_timeout_secs": 120, "proceed_secs": 1,
        "harness_apps": ["renderfleet-supervisor", "renderctl"],
    }))
    spawn(a.state_dir, [sys.executable, str(Path(__file__).parent / "faultproxy.py"),
                        "--upstream", f"http://127.0.0.1:{moto_port}", "--port", str(proxy_port),
                        "--rules", str(rules)],
          {"PATH": "/usr/bin:/bin"}, a.state_dir / "faultproxy.log", program="faultproxy.py")
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    log(f"starting a stack (max {plan['max_workers']} workers, 2 slots) behind the fault proxy on {proxy_url}")
    s = Stack.up(a.state_dir, [
        "--moto-port", str(moto_port), "--max-workers", str(plan["max_workers"]), "--slots", "2",
        "--boot-delay", "2s", "--tick", "1s", "--idle-window", "5s", "--visibility", "10s",
        "--service-env", f"AWS_ENDPOINT_URL={proxy_url}",
        "--service-env", f"RENDERFLEET_LAUNCH_HOOK={LAUNCH_HOOK}",
        "--service-env", f"RENDERFLEET_DRAIN_GRACE_SECS={GRACE_SECS}",
        "--service-env", "RENDERFLEET_RETRY_BACKOFF_SECS=1",
        "--service-env", "RENDERFLEET_SWEEP_SECS=1",
        "--service-env", "RENDERFLEET_SWEEP_AFTER_SECS=3",
        "--service-env", "RENDERFLEET_LAPSED_AFTER_SECS=20",
    ])
    run = Run(s, proxy_url, a.seed)
    ok = True
    try:
        run.kill_agents(plan)
        run.sigterm_agents(plan)
        run.restart_job_server(plan)
        run.pause_scaler(plan)
        run.aws_faults(plan)
    except Exception as e:  # a phase that could not run is a failure, reported with the audit
        run.failures.append(f"{type(e).__name__}: {e}")
        try:
            run.set_faults({"seed": a.seed, "services": {}})
        except OSError:
            pass
    log("auditing")
    report = audit(s, run.accepted, run.faults, drain_timeout=240, say=print)
    took = time.monotonic() - t_start

    print("\nfaults injected")
    w = max(len(r[0]) for r in run.rows) if run.rows else 10
    print(f"  {'fault'.ljust(w)}  {'count':>16}  outcome")
    for name, count, outcome in run.rows:
        print(f"  {name.ljust(w)}  {count:>16}  {outcome}")
    print_report(report, "loss audit (chaos)")
    for f in run.failures:
        print(f"  FAILURE: {f}")
        ok = False
    ok = ok and report["ok"]
    return finish("chaos", ok, took, report, a.summary, short=a.short, seed=a.seed, faults=run.rows,
                  failures=run.failures)


if __name__ == "__main__":
    sys.exit(main())
