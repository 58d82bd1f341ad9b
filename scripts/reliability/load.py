"""The load test: Locust, headless, against the job server of a private local stack (loopback
only), then the loss audit. Run through scripts/load, which owns the state directory and stops
everything on exit.

Reports submit latency p50/p95/p99 (valid submits, client side), the error rate (answers other than
the expected one), 5xx answers (must be none), jobs completed, peak workers, and the audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit import audit, finish, print_report  # noqa: E402
from rfstack import arguments, Stack, log  # noqa: E402

HERE = Path(__file__).resolve().parent


def pct(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    rank = max(1, min(len(sorted_ms), int(-(-p / 100 * len(sorted_ms) // 1))))
    return sorted_ms[rank - 1]


def main() -> int:
    ap = arguments(seed=False)
    ap.add_argument("--base-rate", type=float, default=None,
                    help="requests a second before the step to ten times it (default 0.3)")
    a = ap.parse_args()
    plan = "short" if a.short else "long"
    base = a.base_rate if a.base_rate is not None else 0.3
    max_workers = 4 if a.short else 6
    t_start = time.monotonic()

    log(f"starting a stack (max {max_workers} workers, 2 slots)")
    s = Stack.up(a.state_dir, ["--max-workers", str(max_workers), "--slots", "2", "--boot-delay", "2s",
                               "--tick", "1s", "--idle-window", "5s"])
    peak = {"desired": 0, "instances": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                d, n = s.desired()
                peak["desired"] = max(peak["desired"], d)
                peak["instances"] = max(peak["instances"], n)
            except Exception:  # noqa: BLE001 - a sample missed is no failure
                pass
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    out = a.state_dir / "locust-result.json"
    env = {**os.environ, "RF_API_KEY": s.api_key, "RF_PLAN": plan, "RF_BASE_RATE": str(base), "RF_OUT": str(out)}
    stages = {"short": 36, "long": 180}[plan]
    log(f"running Locust headless against {s.api_url} for {stages} s (base rate, a step to 10x, a ramp)")
    locust = [str(Path(sys.executable).parent / "locust"), "-f", str(HERE / "locustfile.py"), "--headless",
              "--host", s.api_url, "--run-time", f"{stages + 15}s", "--stop-timeout", "10",
              "--only-summary", "--loglevel", "WARNING"]
    t_load = time.monotonic()
    p = subprocess.run(locust, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    load_secs = time.monotonic() - t_load
    (a.state_dir / "locust.log").write_text(p.stdout + p.stderr)
    if not out.exists():
        print(p.stdout[-3000:], p.stderr[-3000:])
        log("Locust wrote no result")
        return 1
    r = json.loads(out.read_text())
    accepted = set(r["accepted"])
    log(f"{len(accepted)} jobs accepted; waiting for them to finish, then auditing")
    report = audit(s, accepted, [], drain_timeout=600 if plan == "long" else 240)
    stop.set()
    took = time.monotonic() - t_start

    ms = sorted(r["submit_ms"])
    requests = sum(r["outcomes"].values())
    unexpected = sum(v for k, v in r["outcomes"].items() if k.startswith("unexpected"))
    five_xx = sum(v for k, v in r["outcomes"].items() if k.startswith("unexpected 5"))
    invalid = sum(v for k, v in r["outcomes"].items() if k.startswith("invalid"))
    completed = report["states"].get("succeeded", 0)
    rows = [
        ("load shape", f"{base:g}/s, step to {10 * base:g}/s, back, ramp {base:g}->{10 * base:g}/s"),
        ("requests", f"{requests} in {load_secs:.0f} s ({requests / max(load_secs, 1):.1f}/s)"),
        ("valid submits accepted (202)", len(accepted)),
        ("invalid submits refused as expected", invalid),
        ("submit latency p50 / p95 / p99", f"{pct(ms, 50):.1f} / {pct(ms, 95):.1f} / {pct(ms, 99):.1f} ms"),
        ("error rate (unexpected answers)", f"{unexpected}/{requests} = {100 * unexpected / max(requests, 1):.2f} %"),
        ("5xx answers", five_xx),
        ("jobs completed", f"{completed} of {len(accepted)}"),
        ("peak workers (desired / instances)", f"{peak['desired']} / {peak['instances']}"),
    ]
    print("\nload")
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k.ljust(w)}  {v}")
    for e in r["server_errors"][:10]:
        print(f"  5xx: {e}")
    print_report(report, "loss audit (load)")
    failures = []
    if five_xx:
        failures.append(f"{five_xx} answers were 5xx")
    if unexpected > 0.01 * requests:
        failures.append(f"error rate {unexpected}/{requests} is above 1 %")
    if not report["ok"]:
        failures.append("the loss audit failed")
    if len(accepted) == 0:
        failures.append("no job was accepted")
    for f in failures:
        print(f"  FAILURE: {f}")
    return finish("load", not failures, took, report, a.summary, plan=plan, base_rate=base,
                  requests=requests, load_secs=round(load_secs, 1), accepted=len(accepted),
                  invalid_refused=invalid, p50_ms=pct(ms, 50), p95_ms=pct(ms, 95), p99_ms=pct(ms, 99),
                  unexpected=unexpected, five_xx=five_xx, completed=completed, peak=peak,
                  outcomes=r["outcomes"])


if __name__ == "__main__":
    sys.exit(main())
