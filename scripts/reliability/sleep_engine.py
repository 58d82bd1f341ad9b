#!/usr/bin/env python3
"""A stand-in render engine for the scale test, behind the agent's external-engine seam
(docs/ENGINE.md: `ENGINE SPEC_JSON OUTPUT`, no shell, stdin closed).

It sleeps for the job's duration (the sum of its scenes), then copies a clip rendered once by
the test (`RF_SLEEP_CLIP`) to OUTPUT, so a hundred agents cost a hundred sleeping processes, not
a hundred ffmpegs. Everything else an agent does (claims, leases, heartbeats, uploads, the
probe of the output) is the real code. Each start and each finished render is appended to
`RF_SLEEP_LOG` as `JOB_ID start|done EPOCH`, from which the test counts jobs rendered twice.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: sleep_engine.py SPEC_JSON OUTPUT", file=sys.stderr)
        return 2
    spec_path, output = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    secs = sum(float(s.get("duration", 0)) for s in spec.get("scenes", []))
    # The agent runs the engine in the job's own work directory, named by the job id.
    job = os.path.basename(os.path.dirname(os.path.abspath(output)))
    log = os.environ.get("RF_SLEEP_LOG")

    def note(what: str) -> None:
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{job} {what} {time.time():.3f}\n")

    note("start")
    time.sleep(max(0.0, min(secs, 600.0)))
    shutil.copyfile(os.environ["RF_SLEEP_CLIP"], output)
    print("progress 1", flush=True)
    note("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
