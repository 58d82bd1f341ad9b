"""The scale test: a burst of jobs on a fleet of real agents under AWS's rules, modelling 1,000
workers. Run through scripts/scale-test, which owns the state directory and stops everything on
exit.

A private local stack starts in AWS-rules mode (`renderctl dev up --aws-rules`): the fault proxy
between the services and the emulator enforces AWS's default quotas, each agent's call weighing
`model_workers / agents` (so the local fleet presses the quotas as 1,000 real workers would),
holds new instances in the launch hook until their agent completes it, and refuses scale-in
protection outside InService. The agents are the real render-agent; only the engine is a stand-in
that sleeps for the job's duration and copies a pre-rendered clip (sleep_engine.py). A burst of
jobs goes in from sixteen clients at once; the fleet scales out, renders, and scales back.

Reports the loss audit and: healthy workers terminated (must be 0), jobs stranded (0), jobs
rendered twice (0), scale-in protection refused (0), tick duration p50/p99, and AWS calls per
operation per minute at the modelled fleet against each default quota, with the headroom
(goal: at least 3x under every quota)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import aws_quotas  # noqa: E402
import awsrules  # noqa: E402
import events  # noqa: E402
from audit import audit, finish, print_report  # noqa: E402
from rfstack import Api, Stack, arguments, log  # noqa: E402

HERE = Path(__file__).resolve().parent
HEADROOM_GOAL = 3.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    rank = max(1, min(len(v), int(-(-p / 100 * len(v) // 1))))
    return v[rank - 1]


def clip(state: Path) -> Path:
    """A one-second clip, rendered once: what every stand-in render delivers."""
    out = state / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0x203050:s=64x64:d=1:r=10",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(out)],
        check=True, stdin=subprocess.DEVNULL)
    return out


def spec(i: int, secs: float) -> dict:
    return {
        "output": {"width": 64, "height": 64, "fps": 10},
        "scenes": [{"duration": secs, "background": {"color": "#203050"},
                    "texts": [{"text": f"scale {i}", "size": 0.2}]}],
    }


def submit_burst(api: Api, n: int, secs: float) -> tuple[set[str], list[str]]:
    """Submits `n` jobs from sixteen threads at once, each with its own Idempotency-Key and
    retried with that key until accepted (a 503 under load is the API asking for exactly that),
    so every stored job is one a client saw accepted. (The batch API would be faster, but it has
    no idempotency key: a batch that times out may store jobs its client never hears of.)"""
    accepted: set[str] = set()
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 600

    def one(i: int) -> None:
        try:
            job, _ = api.submit_until_accepted(spec(i, secs), f"scale-{i}", deadline)
        except RuntimeError as e:
            with lock:
                errors.append(f"job {i}: {e}")
            return
        with lock:
            if job:
                accepted.add(job)
            else:
                errors.append(f"job {i}: not accepted within the deadline")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))
    return accepted, errors


def ticks(state: Path) -> list[dict]:
    """The scaler's tick reports, from its log."""
    out = []
    for rec in events.of(state / "logs" / "scaler.log", events.SCALER_TICK):
        try:
            out.append(json.loads(rec["tick"]))
        except (KeyError, ValueError):
            pass
    return out


def renders(log_file: Path) -> Counter:
    """Finished stand-in renders per job."""
    done: Counter = Counter()
    if log_file.exists():
        for line in log_file.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "done":
                done[parts[0]] += 1
    return done


def rules_snapshot(proxy_url: str) -> dict:
    with urllib.request.urlopen(proxy_url + "/__rules", timeout=10) as r:
        return json.loads(r.read())


# DynamoDB partition classes with one partition per item: their calls spread over the table.
SPREAD_CLASSES = {"JOB", "ASSET", "IDEM", "KEY", "T"}


def quota_of(service: str, operation: str) -> awsrules.Bucket | None:
    """The default quota an operation draws from (documented, or modelled where AWS publishes
    none), or None when AWS sets no request rate (SQS). DynamoDB operations are counted with their
    partition class (`UpdateItem AGENTS`): items spread over many partitions are held against the
    table's quota, a single partition (AGENTS, SCALER, an index shard) against one partition's."""
    operation, _, cls = operation.partition(" ")
    name = aws_quotas.OPERATION_BUCKET.get((service, operation))
    if service == "dynamodb" and name and cls in SPREAD_CLASSES:
        name = name.replace("partition", "table")
    name = name or awsrules.MODELLED_OPERATION_BUCKET.get((service, operation))
    if name is None and service == "autoscaling":
        name = awsrules.AUTOSCALING_BUCKET
    if name is None:
        return None
    return next((b for b in [*aws_quotas.BUCKETS, *awsrules.MODELLED] if b.name == name), None)


def call_table(snap: dict, harness: set[str]) -> list[dict]:
    """Calls per operation per minute at the modelled fleet: the mean over the run's busy
    minutes and the peak 60 s (six consecutive 10 s windows), weighted by each caller's weight,
    against the operation's default quota. Calls are first attempts: the SDK's retries of a
    throttled call are the quota's answer, reported apart."""
    per_op: dict[tuple[str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    throttled: Counter = Counter()
    retries: Counter = Counter()
    for row in snap["calls"]:
        if row["app"] in harness:
            continue
        key = (row["service"], row["operation"])
        throttled[key] += row["throttled"]
        retries[key] += row.get("retries", 0)
        for w in row["windows"]:
            per_op[key][w["start"]] += w["weighted"]
    window = snap.get("window_secs", 10)
    out = []
    for (service, op), windows in sorted(per_op.items()):
        starts = sorted(windows)
        total = sum(windows.values())
        span_min = max(1.0, (starts[-1] - starts[0] + window) / 60.0)
        peak = 0.0
        for s in starts:
            peak = max(peak, sum(windows.get(s + k * window, 0.0) for k in range(60 // window)))
        b = quota_of(service, op)
        quota = b.rate * 60 if b else None
        out.append({
            "service": service, "operation": op, "mean_per_min": total / span_min,
            "peak_per_min": peak, "quota": b.name if b else None, "quota_per_min": quota,
            "headroom": (quota / peak) if (quota and peak) else None,
            "throttled": throttled[(service, op)], "retries": retries[(service, op)],
        })
    return out


def print_calls(rows: list[dict], model: int) -> None:
    print(f"\nAWS calls per minute at {model} modelled workers (weighted) against the default quota")
    print(f"  {'operation':42} {'mean/min':>10} {'peak/min':>10} {'quota/min':>10} {'headroom':>9} "
          f"{'throttled':>9} {'retries':>8}  quota")
    for r in rows:
        q = f"{r['quota_per_min']:.0f}" if r["quota_per_min"] else "-"
        h = f"{r['headroom']:.1f}x" if r["headroom"] else "-"
        flag = "" if r["headroom"] is None or r["headroom"] >= HEADROOM_GOAL else "  BELOW 3x"
        print(f"  {r['service'] + ':' + r['operation']:42} {r['mean_per_min']:10.0f} {r['peak_per_min']:10.0f} "
              f"{q:>10} {h:>9} {r['throttled']:9d} {r['retries']:8d}  {r['quota'] or 'no rate quota'}{flag}")


def main() -> int:
    ap = arguments(seed=False)
    ap.add_argument("--agents", type=int, default=None, help="local agents (default 100; 40 with --short)")
    ap.add_argument("--jobs", type=int, default=None, help="jobs in the burst (default 1000; 300 with --short)")
    ap.add_argument("--job-secs", type=float, default=5.0, help="render seconds of each job")
    ap.add_argument("--model-workers", type=int, default=1000)
    a = ap.parse_args()
    agents = a.agents or (40 if a.short else 100)
    n_jobs = a.jobs or (300 if a.short else 1000)
    model = a.model_workers
    t_start = time.monotonic()

    engine_log = a.state_dir / "renders.log"
    clip_file = clip(a.state_dir)
    log(f"starting a stack of up to {agents} agents in AWS-rules mode modelling {model} workers "
        f"(each agent call weighs {model / agents:g})")
    s = Stack.up(a.state_dir, [
        "--max-workers", str(agents), "--slots", "1", "--boot-delay", "2s", "--tick", "2s",
        "--idle-window", "20s", "--visibility", "60s",
        "--aws-rules", "--model-workers", str(model), "--rules-proxy", str(HERE / "faultproxy.py"),
        "--service-env", "RENDERFLEET_ENGINE=external",
        "--service-env", f"RENDERFLEET_ENGINE_COMMAND={HERE / 'sleep_engine.py'}",
        "--service-env", f"RF_SLEEP_CLIP={clip_file}",
        "--service-env", f"RF_SLEEP_LOG={engine_log}",
        # As Terraform sets it for this fleet (max(60, max_workers) at the modelled size): the
        # first health states of a fleet launched at once stay under Parameter Store's rate.
        "--service-env", f"RENDERFLEET_STATUS_SPREAD_SECS={max(60, model)}",
        "--service-env", "RENDERFLEET_MAX_STEP_UP=1000",
        # The default step-down (10 a tick) of the modelled fleet, scaled to the local one: the
        # scale-in's drains then press the quotas as the modelled fleet's would.
        "--service-env", f"RENDERFLEET_MAX_STEP_DOWN={max(1, round(10 * agents / model))}",
    ])
    proxy_url = s.proxy_url
    if not proxy_url:
        log("the stack has no AWS-rules proxy")
        return 1
    rules_cfg = json.loads((a.state_dir / "aws-rules.json").read_text())
    harness = set(rules_cfg.get("harness_apps", []))

    peak = {"desired": 0, "instances": 0, "at": None}
    back_to_zero = {"at": None}
    stop = threading.Event()
    t_burst = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            try:
                d, n = s.desired()
                if d > peak["desired"]:
                    peak.update(desired=d, at=time.monotonic() - t_burst)
                peak["instances"] = max(peak["instances"], n)
            except Exception:  # noqa: BLE001 - a sample missed is no failure
                pass
            stop.wait(1.0)

    threading.Thread(target=sample, daemon=True).start()
    log(f"submitting a burst of {n_jobs} jobs of {a.job_secs:g} s from 16 clients")
    api = Api(s.api_url, s.api_key, timeout=60)
    t_burst = time.monotonic()
    accepted, submit_errors = submit_burst(api, n_jobs, a.job_secs)
    submit_secs = time.monotonic() - t_burst
    log(f"{len(accepted)} jobs accepted in {submit_secs:.1f} s; waiting for them, then auditing")
    report = audit(s, accepted, [], drain_timeout=900 if not a.short else 600)
    drained_at = time.monotonic() - t_burst

    # Scale-in retires the modelled fleet's step (10 a tick) scaled to the local one.
    zero_wait = 60 + 3 * agents
    log(f"waiting for the fleet to scale back to zero (at most {zero_wait} s)")
    deadline = time.monotonic() + zero_wait
    while time.monotonic() < deadline:
        try:
            if s.desired() == (0, 0):
                back_to_zero["at"] = time.monotonic() - t_burst
                break
        except Exception:  # noqa: BLE001
            pass
        time.sleep(1.0)
    stop.set()
    snap = rules_snapshot(proxy_url)
    (a.state_dir / "aws-rules-snapshot.json").write_text(json.dumps(snap, indent=1))
    took = time.monotonic() - t_start

    tick_reports = ticks(a.state_dir)
    took_ms = [float(t["took_ms"]) for t in tick_reports if "took_ms" in t]
    replaced = sorted({i for t in tick_reports for i in t.get("replaced", [])})
    health_fallbacks = sum(1 for t in tick_reports if t.get("health", {}).get("source") not in (None, "fresh"))
    done = renders(engine_log)
    twice = sorted(j for j, c in done.items() if c > 1)
    stranded = report["jobs_lost"]
    refusals = snap.get("lifecycle", {}).get("protection_refusals", 0)
    healthy_terminated = len(replaced) + len(report["interrupted_by_scale_in"])
    rows = call_table(snap, harness)
    throttles = sum(r["throttled"] for r in rows)

    summary_rows = [
        ("agents (local) / modelled workers", f"{agents} / {model}"),
        ("jobs submitted / accepted", f"{n_jobs} / {len(accepted)} in {submit_secs:.1f} s"),
        ("peak workers (desired / instances)", f"{peak['desired']} / {peak['instances']}"
         + (f", desired peak {peak['at']:.1f} s after the burst" if peak["at"] is not None else "")),
        ("all jobs terminal after", f"{drained_at:.1f} s"),
        ("fleet back to zero after", f"{back_to_zero['at']:.1f} s" if back_to_zero["at"] else f"not within {zero_wait} s"),
        ("healthy workers terminated", healthy_terminated),
        ("jobs stranded", stranded),
        ("jobs rendered twice", len(twice)),
        ("scale-in protection refused", refusals),
        ("ticks / on a fallback health view", f"{len(tick_reports)} / {health_fallbacks}"),
        ("tick duration p50 / p99", f"{pct(took_ms, 50):.0f} / {pct(took_ms, 99):.0f} ms"),
        ("AWS calls throttled (all callers)", throttles),
    ]
    print("\nscale")
    w = max(len(k) for k, _ in summary_rows)
    for k, v in summary_rows:
        print(f"  {k.ljust(w)}  {v}")
    print_calls(rows, model)
    print_report(report, "loss audit (scale)")

    failures = []
    if submit_errors:
        failures.append(f"{len(submit_errors)} submit errors, e.g. {submit_errors[:3]}")
    if healthy_terminated:
        failures.append(f"{healthy_terminated} healthy workers terminated: {replaced[:5]}")
    if stranded:
        failures.append(f"{stranded} jobs stranded")
    if twice:
        failures.append(f"{len(twice)} jobs rendered twice, e.g. {twice[:5]}")
    if refusals:
        failures.append(f"{refusals} SetInstanceProtection calls refused (not InService)")
    if not report["ok"]:
        failures.append("the loss audit failed")
    if not accepted:
        failures.append("no job was accepted")
    for f in failures:
        print(f"  FAILURE: {f}")
    below = [f"{r['service']}:{r['operation']} {r['headroom']:.1f}x" for r in rows
             if r["headroom"] is not None and r["headroom"] < HEADROOM_GOAL]
    if below:
        print(f"  below the {HEADROOM_GOAL:g}x headroom goal: {', '.join(below)}")
    return finish("scale", not failures, took, report, a.summary, agents=agents, model_workers=model,
                  jobs=n_jobs, accepted=len(accepted), submit_secs=round(submit_secs, 1),
                  peak=peak, drained_secs=round(drained_at, 1), back_to_zero_secs=back_to_zero["at"],
                  healthy_terminated=healthy_terminated, stranded=stranded, rendered_twice=len(twice),
                  protection_refused=refusals, ticks=len(tick_reports), health_fallbacks=health_fallbacks,
                  tick_p50_ms=pct(took_ms, 50), tick_p99_ms=pct(took_ms, 99), calls=rows)


if __name__ == "__main__":
    sys.exit(main())
