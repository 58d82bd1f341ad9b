"""Tests that the event names the reliability tools match (events.py) are the ones the binaries
log (core/src/events.rs): the same constants, with the same values, and the same `ALL` set.

    python3 -m unittest discover -s scripts/reliability -p 'test_*.py'
"""

from __future__ import annotations

import json
import re
import tempfile
import unittest
from pathlib import Path

import events

HERE = Path(__file__).resolve().parent
EVENTS_RS = HERE.parent.parent / "core" / "src" / "events.rs"


def rust_events() -> tuple[dict[str, str], list[str]]:
    """core/src/events.rs's string constants by name, and the names its `ALL` array lists."""
    text = EVENTS_RS.read_text()
    consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "([^"]*)";', text))
    all_ = re.search(r"pub const ALL: \[&str; \d+\] = \[(.*?)\];", text, re.S)
    listed = re.findall(r"[A-Z_]+", all_.group(1)) if all_ else []
    return consts, listed


class SameNamesTest(unittest.TestCase):
    def test_the_rust_file_is_read(self):
        consts, listed = rust_events()
        self.assertGreaterEqual(len(consts), 9, consts)
        self.assertEqual(sorted(listed), sorted(consts), "events.rs's ALL lists every constant")

    def test_every_rust_constant_is_in_python_with_the_same_value(self):
        consts, _ = rust_events()
        python = {k: getattr(events, k) for k in consts if hasattr(events, k)}
        self.assertEqual(python, consts)

    def test_python_has_no_event_rust_does_not_log(self):
        consts, _ = rust_events()
        self.assertEqual(events.ALL, frozenset(consts.values()))
        python = {k: v for k, v in vars(events).items()
                  if re.fullmatch(r"[A-Z_]+", k) and isinstance(v, str)}
        self.assertEqual(python, consts)


class ReadTest(unittest.TestCase):
    def test_events_are_matched_by_name_and_jobs_found_in_spans(self):
        lines = [
            json.dumps({"event": events.JOB_CLAIMED, "message": "job claimed", "job_id": "job_1"}),
            "not json: a panic message",
            json.dumps({"event": events.JOB_SUCCEEDED, "message": "reworded",
                        "span": {"job_id": "job_1"}}),
            json.dumps({"message": "job claimed", "job_id": "job_2"}),
            "{broken",
        ]
        with tempfile.TemporaryDirectory() as d:
            log = Path(d) / "agent.log"
            log.write_text("\n".join(lines) + "\n")
            got = [(e["event"], events.job_of(e))
                   for e in events.of(log, events.JOB_CLAIMED, events.JOB_SUCCEEDED)]
            self.assertEqual(list(events.of(Path(d) / "missing.log", events.JOB_CLAIMED)), [])
        self.assertEqual(got, [(events.JOB_CLAIMED, "job_1"), (events.JOB_SUCCEEDED, "job_1")])


if __name__ == "__main__":
    unittest.main()
