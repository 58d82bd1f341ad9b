"""Fuzzing the job server's API with schemathesis against its own /openapi.json: a fixed seed and a
fixed number of cases per operation; no answer may be a 5xx or break the schema (body, status code,
content type). The stack renders with a stand-in engine (it copies a tiny prepared MP4), so the
jobs the fuzzer gets accepted, whatever their size, finish in moments; the loss audit then checks
every stored job. Run through scripts/fuzz, which owns the state directory and stops everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import events  # noqa: E402
from audit import audit, finish, print_report  # noqa: E402
from rfstack import arguments, Stack, log  # noqa: E402

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def stand_in_engine(state: Path) -> Path:
    """An external engine (docs/ENGINE.md) that writes a tiny prepared MP4 whatever the spec."""
    tiny = state / "tiny.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=64x36:d=1:r=5",
                    "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1", "-c:v", "libx264",
                    "-c:a", "aac", "-shortest", "-y", str(tiny)], check=True, stdin=subprocess.DEVNULL)
    engine = state / "stand-in-engine"
    engine.write_text(f'#!/bin/sh\necho "progress 1"\nexec cp "{tiny}" "$2"\n')
    engine.chmod(0o755)
    return engine


def main() -> int:
    a = arguments().parse_args()
    examples = 25 if a.short else 300
    t_start = time.monotonic()

    engine = stand_in_engine(a.state_dir)
    log("starting a stack (max 2 workers) with a stand-in engine")
    s = Stack.up(a.state_dir, ["--max-workers", "2", "--slots", "4", "--boot-delay", "1s", "--tick", "1s",
                               "--idle-window", "5s", "--service-env", "RENDERFLEET_ENGINE=external",
                               "--service-env", f"RENDERFLEET_ENGINE_COMMAND={engine}"])
    report_path = a.state_dir / "schemathesis.json"
    cmd = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{s.api_url}/openapi.json",
           "-H", f"Authorization: Bearer {s.api_key}", "--checks", CHECKS,
           "--max-examples", str(examples), "--seed", str(a.seed), "--workers", "1",
           "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
           "--request-timeout", "30", "--no-color", "--suppress-health-check", "all",
           "--report", "json", "--report-json-path", str(report_path), "--output-sanitize", "true"]
    log(f"schemathesis: seed {a.seed}, {examples} cases per operation, checks {CHECKS}")
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=a.state_dir,
                       env={**os.environ, "SCHEMATHESIS_HOOKS": ""}, timeout=1800)
    fuzz_secs = time.monotonic() - t0
    (a.state_dir / "schemathesis.log").write_text(p.stdout + p.stderr)
    print(p.stdout[-6000:])
    cases, statuses, failures = summarize(report_path, a.state_dir / "logs" / "job-server.log")

    jobs = s.jobs()
    log(f"the fuzzer got {len(jobs)} jobs accepted; waiting for them to finish, then auditing")
    report = audit(s, set(jobs), [], drain_timeout=240, require_acknowledged=False)
    took = time.monotonic() - t_start
    five_xx = sum(n for st, n in statuses.items() if st >= 500)
    print("\nfuzz")
    print(f"  cases sent            {cases} in {fuzz_secs:.0f} s (seed {a.seed}, {examples} per operation)")
    print(f"  server answers        {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))}")
    print(f"  5xx answers           {five_xx}")
    print(f"  check failures        {len(failures)}")
    for f in failures[:20]:
        print(f"    {f}")
    print_report(report, "loss audit (fuzz)")
    ok = p.returncode == 0 and five_xx == 0 and not failures and report["ok"] and cases > 0
    return finish("fuzz", ok, took, report, a.summary, seed=a.seed, per_operation=examples, cases=cases,
                  statuses=statuses, five_xx=five_xx, failures=failures, schemathesis_exit=p.returncode)


def summarize(path: Path, server_log: Path) -> tuple[int, dict[int, int], list[str]]:
    """Cases sent and check failures from schemathesis's JSON report; the answers by status from
    the job server's own request log (one `http.request` event per request it answered)."""
    if not path.exists():
        return 0, {}, ["schemathesis wrote no report"]
    data = json.loads(path.read_text())
    cases = int(data.get("test_cases", {}).get("generated", 0))
    failures = [json.dumps(f, default=str)[:300] for f in data.get("failures", [])]
    failures += [f"error: {json.dumps(e, default=str)[:300]}" for e in data.get("errors", [])]
    statuses: Counter = Counter()
    for rec in events.of(server_log, events.HTTP_REQUEST):
        try:
            statuses[int(rec["status"])] += 1
        except (ValueError, KeyError, TypeError):
            continue
    return cases, dict(statuses), failures


if __name__ == "__main__":
    sys.exit(main())
