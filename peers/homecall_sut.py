"""HomeCall's gateway as a system under test in the serial -> MQTT peer harness's bench.py.

    bench.py --sut-class peers/homecall_sut.py:HomeCall ...   (run from the project root)

This copy follows the product as it is: the harness writes each tag's frame once, where a
real RDM6300 repeats it while the fob is held, so the gateway runs with
``--rfid-confirm-frames 1`` (it normally waits for two identical frames); and an unknown tag is
published redacted as ``em4100:#`` + 12 hex of sha256 over the household's tag salt (for a
plan file, ``local-<gateway id>``), a NUL and the canonical tag.

Environment: HOMECALL_PROJECT = the project checkout with its .venv (default: the current
folder, so run bench.py from the project root).

Runs, against the harness's own Mosquitto (anonymous, no ACL):
  * central (`homecall central serve`, its own process group, never killed by kill9): it
    stores events and acks them, as in a real deployment, so the gateway does not resend;
  * the gateway (`homecall gateway run --rfid PTY`), journal synchronous=FULL (the default),
    with a plan file holding one carer fob, so every harness frame is an unknown tag and
    becomes an `unknown_tag` event on homecall/v1/gw/{id}/events.

The gateway never publishes tag UIDs; extract() maps the redacted digests back with a table
computed in advance for every phase byte and sequence number the harness uses.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time

import bench  # type: ignore  # the harness module, loaded first

PROJECT = os.environ.get("HOMECALL_PROJECT", os.getcwd())
GW = "gw-peer-1"
MAX_SEQ = int(os.environ.get("HOMECALL_MAX_SEQ", "12000"))


def _redact(tag: str) -> str:
    kind, _, value = tag.partition(":")
    canonical = f"{kind.lower()}:{value.upper()}"
    return "em4100:#" + hashlib.sha256(f"local-{GW}\x00{canonical}".encode()).hexdigest()[:12]


def _table() -> dict[str, tuple[int, int]]:
    table: dict[str, tuple[int, int]] = {}
    for phase in sorted(set(bench.PHASES.values())):
        for seq in range(MAX_SEQ):
            data = bytes([phase]) + seq.to_bytes(4, "big")
            table.setdefault(_redact("em4100:" + data.hex().upper()), (phase, seq))
    return table


_PLAN_PY = r"""
import sys
from datetime import datetime, timedelta
from homecall.plan import DocumentCarer, PlanDocument, Visit
today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
visits = [Visit(id=f"v-{d}-{h}", service_user="su-1", start=today + timedelta(days=d, hours=h),
                duration_min=30, carers=("c-1",)) for d in range(3) for h in (8, 12, 17, 21)]
doc = PlanDocument(gateway=sys.argv[1], service_users=("su-1",),
                   carers=(DocumentCarer(id="c-1", tags=("em4100:FFFFFFFFFF",)),),
                   visits=tuple(visits))
open(sys.argv[2], "w").write(doc.model_dump_json())
"""


class HomeCall(bench.ProcessSUT):
    name = "homecall"
    topic = f"homecall/v1/gw/{GW}/events"
    notes = ("HomeCall gateway (journal synchronous=FULL, fsync before publish) + central "
             "acking after its own commit; MQTT 5 QoS 1; tags published as redacted digests")

    def __init__(self) -> None:
        super().__init__()
        self.central = None
        self.table = _table()
        self.hc = os.path.join(PROJECT, ".venv/bin/homecall")

    def on_broker_port(self, port: int, workdir: str) -> None:
        os.makedirs(workdir, exist_ok=True)
        self.plan = os.path.join(workdir, "plan.json")
        subprocess.run([os.path.join(PROJECT, ".venv/bin/python"), "-c", _PLAN_PY, GW, self.plan],
                       check=True, cwd=PROJECT)
        http = bench.free_port()
        with open(os.path.join(workdir, "central.log"), "ab") as log:  # the child keeps a copy
            self.central = subprocess.Popen(
                [self.hc, "central", "serve", "--db", os.path.join(workdir, "central.db"),
                 "--port", str(http), "--mqtt-port", str(port)],
                cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        time.sleep(3)

    def command(self, pty_path, port, workdir):
        argv = [self.hc, "gateway", "run", "--id", GW,
                "--journal", os.path.join(workdir, "journal.db"),
                "--mqtt-port", str(port), "--rfid", pty_path, "--plan", self.plan,
                "--clock-ok", "yes", "--rfid-confirm-frames", "1"]
        return argv, {}, PROJECT

    def start(self, pty_path, port, workdir):
        if self.central is None:
            self.on_broker_port(port, workdir)
        super().start(pty_path, port, workdir)

    def stop(self):
        super().stop()
        if self.central and self.central.poll() is None:
            os.killpg(self.central.pid, signal.SIGTERM)
            try:
                self.central.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.central.pid, signal.SIGKILL)
        self.central = None

    def extract(self, payload: bytes):
        try:
            msg = json.loads(payload)
        except ValueError:
            return []
        if msg.get("type") != "unknown_tag":
            return []
        hit = self.table.get((msg.get("data") or {}).get("tag", ""))
        return [hit] if hit else []

    def versions(self):
        out = subprocess.run(["git", "-C", PROJECT, "log", "-1", "--format=%h %cs"],
                             capture_output=True, text=True).stdout.strip()
        return {"homecall": out}
