"""The local stack as the reliability tools see it: start it with `renderctl dev up` in a private
state directory, read what it records (stack.json, the resources' names included, agents.json and
logs, whose events events.py names), start and stop extra processes by pid (recorded in owned.pids
so the calling script's trap stops them too), and a small API client that retries a submit with
the same Idempotency-Key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bin_dir() -> Path:
    return Path(os.environ.get("RENDERFLEET_BIN_DIR", ROOT / "target" / "debug"))


def log(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    out = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            out[k.decode()] = v.decode(errors="replace")
    return out


@dataclass
class Owned:
    pid: int
    program: str
    popen: subprocess.Popen


def spawn(state: Path, argv: list[str], env: dict[str, str], log_file: Path,
          program: str | None = None) -> Owned:
    """Starts a process of this run, logging to `log_file`, and records its pid in the state
    directory's owned.pids, from which the shell wrapper stops whatever is left at the end."""
    out = open(log_file, "ab")
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                         start_new_session=True)
    out.close()
    o = Owned(p.pid, program or Path(argv[0]).name, p)
    with open(state / "owned.pids", "a") as f:
        f.write(f"{o.pid} {o.program}\n")
    return o


@dataclass
class Stack:
    state: Path
    api_url: str
    api_key: str
    endpoint: str
    region: str
    env: str
    pids: dict[str, int]
    # The resources' names as renderctl resolved them (stack.json's `names`): queue, dlq, table,
    # bucket, asg, tick_queue, ssm_prefix, scaling_policy_parameter, launch_template, launch_hook.
    names: dict[str, str]
    # The AWS-rules proxy the services reach the emulator through, when the stack runs one.
    proxy_url: str | None = None

    # -- start and stop -------------------------------------------------------------------
    @classmethod
    def up(cls, state: Path, args: list[str]) -> "Stack":
        moto = ROOT / ".venv" / "bin" / "moto_server"
        cmd = [
            str(bin_dir() / "renderctl"), "dev", "up", "--state-dir", str(state),
            "--api-port", "0", "--moto-bin", str(moto), "--bin-dir", str(bin_dir()), *args,
        ]
        if "--moto-port" not in args:
            cmd += ["--moto-port", "0"]
        out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise SystemExit(f"renderctl dev up failed:\n{out.stdout}{out.stderr}")
        return cls.load(state)

    @classmethod
    def load(cls, state: Path) -> "Stack":
        path = state / "stack.json"
        f = json.loads(path.read_text())
        names = f.get("names")
        if not isinstance(names, dict):
            raise SystemExit(f"{path} records no resource names (`names`): the renderctl in "
                             f"{bin_dir()} predates them; rebuild it (cargo build -p renderctl)")
        return cls(
            state=state, api_url=f["api_url"], api_key=f["api_key"], endpoint=f["endpoint"],
            region=f["region"], env=f["env"],
            pids={k: f[k]["pid"] for k in ("moto", "job_server", "scaler", "supervisor")},
            names=names, proxy_url=f.get("proxy_url"),
        )

    def name(self, resource: str) -> str:
        """One resource's name, as stack.json records it."""
        try:
            return self.names[resource]
        except KeyError:
            raise SystemExit(f"{self.state / 'stack.json'} records no name for {resource!r}") from None

    # -- processes this run starts ------------------------------------------------------------
    def spawn(self, argv: list[str], env: dict[str, str], log_file: Path,
              program: str | None = None) -> Owned:
        return spawn(self.state, argv, env, log_file, program)

    def stop_owned(self, o: Owned, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        if o.popen.poll() is None:
            o.popen.send_signal(sig)
            try:
                o.popen.wait(grace)
            except subprocess.TimeoutExpired:
                o.popen.kill()
                o.popen.wait(5)

    def restartable(self, name: str) -> tuple[list[str], dict[str, str]]:
        """The argv and environment of one of the stack's services, read before stopping it."""
        pid = self.pids[name]
        return cmdline(pid), environ(pid)

    # -- what the stack records ---------------------------------------------------------------------
    def agents(self) -> dict[str, int]:
        try:
            t = json.loads((self.state / "agents.json").read_text())
        except (OSError, ValueError):
            return {}
        return {k: v["pid"] for k, v in t.get("agents", {}).items()}

    def boto(self, service: str):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 10, "mode": "standard"},
                          s3={"addressing_style": "path"}),
        )

    @property
    def table(self) -> str:
        return self.name("table")

    @property
    def bucket(self) -> str:
        return self.name("bucket")

    @property
    def asg(self) -> str:
        return self.name("asg")

    def jobs(self) -> dict[str, dict]:
        """Every job record in the table, by id (attribute values unwrapped)."""
        ddb = self.boto("dynamodb")
        out: dict[str, dict] = {}
        for page in ddb.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="sk = :job",
            ExpressionAttributeValues={":job": {"S": "JOB"}},
            ProjectionExpression="id, #s, attempts, instance_id, created_at, started_at, finished_at, output_key",
            ExpressionAttributeNames={"#s": "state"},
        ):
            for it in page["Items"]:
                rec = {k: next(iter(v.values())) for k, v in it.items()}
                out[rec["id"]] = rec
        return out

    def desired(self) -> tuple[int, int]:
        g = self.boto("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.asg])["AutoScalingGroups"][0]
        return g["DesiredCapacity"], len(g["Instances"])


class Api:
    """A small client of the job server (stdlib only, so it is safe in threads)."""

    def __init__(self, base: str, key: str, timeout: float = 15.0):
        self.base, self.key, self.timeout = base, key, timeout

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict | None, float]:
        h = {"Authorization": f"Bearer {self.key}"}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=h)
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                data = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            data, status = e.read(), e.code
        took = time.monotonic() - t0
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return status, parsed, took

    def submit_until_accepted(self, spec: dict, key: str, deadline: float,
                              events: list | None = None) -> tuple[str | None, int]:
        """POSTs `spec` with Idempotency-Key `key` until a 202 (retrying connection errors, 5xx
        and 503 with backoff, always with the same key). Returns the job id and the tries."""
        body = json.dumps(spec).encode()
        tries, delay = 0, 0.2
        while time.monotonic() < deadline:
            tries += 1
            try:
                status, parsed, _ = self.request("POST", "/v1/jobs", body, {"Idempotency-Key": key})
            except (OSError, urllib.error.URLError) as e:
                if events is not None:
                    events.append(("connection", str(e)[:80]))
                status, parsed = None, None
            if status == 202 and parsed and "id" in parsed:
                return parsed["id"], tries
            if status is not None and status < 500 and status != 429:
                raise RuntimeError(f"submit answered {status}: {parsed}")
            if events is not None and status is not None:
                events.append((status, (parsed or {}).get("error", {}).get("code") if isinstance(parsed, dict) else None))
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        return None, tries


def small_spec(i: int, seconds: float = 1.0, size=(192, 108), fps: int = 10) -> dict:
    return {
        "output": {"width": size[0], "height": size[1], "fps": fps},
        "scenes": [{"duration": seconds, "background": {"color": "#203050"},
                    "texts": [{"text": f"job {i}", "size": 0.2}]}],
    }


def arguments(seed: bool = True) -> "argparse.ArgumentParser":
    """The options every reliability script takes; a script adds its own before parsing."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--short", action="store_true")
    if seed:
        ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--summary", type=Path, help="also write the figures here as JSON")
    return ap

