"""Side by side: Prometheus Alertmanager and the responder on the same burst, in one run.

Alertmanager (Debian's ``prometheus-alertmanager``) is started on loopback with one route that
pages once per incident (``group_by: [incident]``, ``group_wait``/``group_interval`` 1 s) to a
webhook receiver on loopback (``send_resolved: true``). The burst: N alerts over M incidents,
one alert per POST on one keep-alive connection (one alert per POST is the fair match for one
SNS notification per Lambda invocation). Its CPU is ``utime + stime`` of its process from
``/proc/PID/stat``, read before the first POST and after the M-th page has arrived, so the
notifications it sends are counted like the responder's pages are.

The responder's side is ``bench/storm.py --store sqlite`` (a fresh interpreter, the same burst).
The two run interleaved, ``--rounds`` times (3 by default); each round prints both figures and
the ratio responder CPU per event / Alertmanager CPU per alert, and the median ratio closes.

    python bench/alertmanager_peer.py                     # 3 rounds of 10,000 events over 100 incidents
    python bench/alertmanager_peer.py --rounds 1 --events 1000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BINARY = "prometheus-alertmanager"

CONFIG = """\
route:
  receiver: pager
  group_by: ['incident']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: pager
    webhook_configs:
      - url: 'http://127.0.0.1:{port}/page'
        send_resolved: true
"""


def process_cpu_seconds(stat_line: str, ticks_per_second: int) -> float:
    """utime + stime from a ``/proc/PID/stat`` line (fields 14 and 15; the name may hold spaces)."""
    fields = stat_line[stat_line.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def _cpu(pid: int) -> float:
    return process_cpu_seconds(Path(f"/proc/{pid}/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(ThreadingHTTPServer):
    # Alertmanager sends the 100 groups' pages at once: the default backlog of 5 refuses most
    # of them and its retries (exponential back-off) would be measured as its latency and CPU.
    request_queue_size = 1024
    daemon_threads = True


class Receiver:
    """The webhook end: counts firing and resolved notifications, stamps each incident's first page."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.firing: dict[str, float] = {}
        self.firing_pages = 0
        self.resolved_pages = 0
        self.stamps: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stamp = time.perf_counter()
                with receiver.lock:
                    incident = body.get("groupLabels", {}).get("incident", "")
                    if body.get("status") == "firing":
                        receiver.firing_pages += 1
                        receiver.firing.setdefault(incident, stamp)
                        receiver.stamps.append(stamp)
                    else:
                        receiver.resolved_pages += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def alertmanager_binary() -> str:
    found = shutil.which(BINARY)
    if not found:
        raise SystemExit(f"{BINARY} not found: apt-get install -y prometheus-alertmanager (bench/run does)")
    return found


def alert(n: int, incidents: int, starts: str) -> bytes:
    incident = f"storm-alarm-{n % incidents:03d}"
    return json.dumps([{
        "labels": {"alertname": incident, "incident": incident, "severity": "SEV2", "service": "storm"},
        "annotations": {"summary": "Storm benchmark alarm."},
        "startsAt": starts,
    }]).encode()


def run_alertmanager(total: int, incidents: int, settle_seconds: float = 20.0) -> dict[str, Any]:
    receiver = Receiver()
    folder = Path(tempfile.mkdtemp(prefix="am-bench-"))
    (folder / "am.yml").write_text(CONFIG.format(port=receiver.port))
    port = _free_port()
    process = subprocess.Popen(
        [alertmanager_binary(), f"--config.file={folder / 'am.yml'}", f"--storage.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as ready:
                    if ready.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("alertmanager did not become ready")
        starts = datetime.now(UTC).isoformat()
        bodies = [alert(n, incidents, starts) for n in range(total)]  # built before the clock starts
        connection = http.client.HTTPConnection("127.0.0.1", port)  # one keep-alive connection
        first_sent: dict[str, float] = {}
        cpu0, wall0 = _cpu(process.pid), time.perf_counter()
        for n, body in enumerate(bodies):
            first_sent.setdefault(f"storm-alarm-{n % incidents:03d}", time.perf_counter())
            connection.request("POST", "/api/v2/alerts", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"alertmanager answered {response.status} to alert {n}")
        sent = time.perf_counter()
        deadline = sent + settle_seconds
        while receiver.firing_pages < incidents and time.perf_counter() < deadline:
            time.sleep(0.01)
        cpu, wall = _cpu(process.pid) - cpu0, time.perf_counter() - wall0
        connection.close()
        time.sleep(1.5)  # one more group_interval: any second page for an incident would show now
        latency = sorted(receiver.firing[i] - first_sent[i] for i in receiver.firing if i in first_sent)
        return {
            "alerts": total, "incidents": incidents, "pages": receiver.firing_pages,
            "cpu_us_per_alert": round(cpu / total * 1e6, 1), "cpu_s": round(cpu, 3),
            "post_wall_s": round(sent - wall0, 3), "wall_to_last_page_s": round(wall, 3),
            "page_latency_ms_p99": round(latency[max(0, int(len(latency) * 0.99) - 1)] * 1000, 1) if latency else None,
        }
    finally:
        process.terminate()
        process.wait()
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)


def run_responder(total: int, incidents: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "storm.py"), "--store", "sqlite",
                           "--events", str(total), "--alarms", str(incidents)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def side_by_side(rounds: int, total: int, incidents: int) -> dict[str, Any]:
    runs = []
    for n in range(rounds):
        peer = run_alertmanager(total, incidents)
        ours = run_responder(total, incidents)
        ratio = round(ours["cpu_us_per_event"] / peer["cpu_us_per_alert"], 2)
        runs.append({"round": n + 1, "alertmanager": peer, "responder": {
            k: ours[k] for k in ("pages", "cpu_us_per_event", "page_latency_ms_p99", "events_per_s")},
            "ratio": ratio})
        print(f"round {n + 1}: alertmanager {peer['cpu_us_per_alert']} µs/alert ({peer['pages']} pages), "
              f"responder {ours['cpu_us_per_event']} µs/event ({ours['pages']} pages): ratio {ratio}",
              file=sys.stderr)
    ratios = [r["ratio"] for r in runs]
    return {"events": total, "incidents": incidents, "runs": runs, "ratios": ratios,
            "median_ratio": statistics.median(ratios),
            "pages_ok": all(r["alertmanager"]["pages"] == incidents and r["responder"]["pages"] == incidents
                            for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--incidents", type=int, default=100)
    args = parser.parse_args()
    result = side_by_side(args.rounds, args.events, args.incidents)
    print(json.dumps(result, indent=2))
    if not result["pages_ok"]:
        raise SystemExit(f"expected exactly {args.incidents} pages from each side in every round")


if __name__ == "__main__":
    main()
