"""Bounded loopback load test of BLT Studio under real gunicorn, on CPU, with the shipped model.

    python bench/load.py --clients 16 --requests 20000 --duration 70 --out bench/results/load_cpu.json

Starts gunicorn with the repository's config on a free 127.0.0.1 port (bench/server.py), warms
the model, then runs `--clients` threads, each sending a seeded random mix of entropy (1 kB),
patch (2 kB, any mode), streamed generation (16 new bytes, read to its end) and stored-file
requests, one after another on its own keep-alive connection, until `--requests` have been sent
or `--duration` seconds have passed, whichever comes first. `--warmup` seconds of the same load
run first, uncounted, so the start RSS already holds the working set of concurrent requests and
the growth measured is what the run adds. `--url` targets a server already running on 127.0.0.1
instead (its memory is then not measured); any other host is refused.

Reports throughput, p50/p95/p99 latency per kind (of all answers and of the 200s), counts by
status (429 is the app refusing work beyond its slots; a dropped connection counts as
'connection_error'), the gunicorn worker's RSS (/proc/<pid>/status VmRSS) after the first
requests ('idle'), at the start, at the end and at its peak, and the load average.
Targets (issue #6): no 5xx, RSS growth under 10 %.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import english, machine, percentile  # noqa: E402
from server import REPO, Server  # noqa: E402

LOOPBACK = "127.0.0.1"
KINDS = {"entropy": 3, "patch": 3, "generate_stream": 2, "file": 2}     # kind -> weight in the mix
MODES = ["entropy", "entropy_monotonic", "static", "space"]
FILES = ["/data/languages.json", "/api/figures/languages", "/api/visualizations"]


def loopback_port(url: str) -> int:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != LOOPBACK or parts.port is None:
        raise SystemExit(f"refusing to load-test {url!r}: only http://{LOOPBACK}:<port> is allowed")
    return parts.port


def worker_rss_kib(master_pid: int) -> int:
    """VmRSS of gunicorn's worker: the one child of the master."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker under pid {master_pid}, found {children}")
    status = Path(f"/proc/{children[0]}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


class Client:
    """One simulated user: a keep-alive connection to 127.0.0.1 and a seeded request mix."""

    def __init__(self, port: int, seed: int, texts: dict[str, str]):
        self.port, self.rng, self.texts = port, random.Random(seed), texts
        self.conn = None

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=120)
        try:
            self.conn.request(method, path, body=None if body is None else json.dumps(body),
                              headers={"Content-Type": "application/json"} if body is not None else {})
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise

    def one(self) -> tuple[str, str]:
        """Send one request of a random kind; (kind, status) where status is the HTTP code, or
        '200 stream error' for a stream that ended in an error event."""
        kind = self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        offset = self.rng.randrange(1000)
        if kind == "entropy":
            status, _ = self.request("POST", "/api/entropy", {"text": self.texts["entropy"][offset:offset + 1000]})
        elif kind == "patch":
            status, _ = self.request("POST", "/api/patch", {"text": self.texts["patch"][offset:offset + 2000],
                                                            "mode": self.rng.choice(MODES)})
        elif kind == "generate_stream":
            status, data = self.request("POST", "/api/generate/stream",
                                        {"prompt": self.texts["patch"][offset:offset + 40], "max_new_bytes": 16,
                                         "temperature": 0.8, "seed": offset})
            if status == 200 and b"event: done" not in data:
                return kind, "200 stream error"
        else:
            status, _ = self.request("GET", self.rng.choice(FILES))
        return kind, str(status)


def run_load(port: int, clients: int, max_requests: int, duration_s: float, texts: dict) -> tuple[list, float]:
    """Run the clients; returns ([(kind, status, seconds)], wall seconds)."""
    results, lock = [], threading.Lock()
    issued = 0
    deadline = time.monotonic() + duration_s

    def take_ticket() -> bool:
        nonlocal issued
        with lock:
            if issued >= max_requests or time.monotonic() >= deadline:
                return False
            issued += 1
            return True

    def client_loop(seed: int) -> None:
        client = Client(port, seed, texts)
        while take_ticket():
            t0 = time.perf_counter()
            try:
                kind, status = client.one()
            except (OSError, http.client.HTTPException):
                kind, status = "unknown", "connection_error"
            with lock:
                results.append((kind, status, time.perf_counter() - t0))

    threads = [threading.Thread(target=client_loop, args=(seed,)) for seed in range(clients)]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - t0


def latency(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"p50_s": percentile(values, 0.50), "p95_s": percentile(values, 0.95), "p99_s": percentile(values, 0.99),
            "max_s": max(values)}


def summarize(results: list, wall_s: float) -> dict:
    by_kind = defaultdict(list)
    for kind, status, seconds in results:
        by_kind[kind].append((status, seconds))
    ok = sum(1 for _, status, _ in results if status == "200")
    return {
        "requests": len(results), "wall_s": wall_s, "throughput_rps": len(results) / wall_s,
        "ok_throughput_rps": ok / wall_s,
        "by_status": dict(sorted(Counter(status for _, status, _ in results).items())),
        "server_errors_5xx": sum(1 for _, status, _ in results if status.startswith("5")),
        "by_kind": {kind: {"requests": len(rows), "by_status": dict(sorted(Counter(s for s, _ in rows).items())),
                           "latency_all": latency([t for _, t in rows]),
                           "latency_200": latency([t for s, t in rows if s == "200"])}
                    for kind, rows in sorted(by_kind.items())},
    }


class RssSampler(threading.Thread):
    """The worker's RSS every `every_s` seconds: (seconds since start, MiB)."""

    def __init__(self, master_pid: int, every_s: float = 5.0):
        super().__init__(daemon=True)
        self.master_pid, self.every_s, self.stop = master_pid, every_s, threading.Event()
        self.samples: list[tuple[float, float]] = []

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.wait(self.every_s):
            self.samples.append((round(time.monotonic() - t0, 1), worker_rss_kib(self.master_pid) / 1024))


def measure(port: int, master_pid: int | None, args, texts: dict) -> dict:
    warm = Client(port, -1, texts)
    for _ in range(2 * len(KINDS)):         # load the model
        warm.one()
    rss_idle = worker_rss_kib(master_pid) if master_pid else None
    run_load(port, args.clients, args.requests, args.warmup, texts)    # the same load, not counted
    rss_start = worker_rss_kib(master_pid) if master_pid else None
    sampler = RssSampler(master_pid) if master_pid else None
    if sampler:
        sampler.start()
    results, wall_s = run_load(port, args.clients, args.requests, args.duration, texts)
    memory = None
    if sampler:
        sampler.stop.set()
        time.sleep(1.0)                     # let the last responses' buffers go
        rss_end = worker_rss_kib(master_pid)
        memory = {"worker_rss_mib_idle": rss_idle / 1024, "worker_rss_mib_start": rss_start / 1024, "worker_rss_mib_end": rss_end / 1024,
                  "worker_rss_mib_peak": max([rss_end / 1024] + [mib for _, mib in sampler.samples]),
                  "growth": rss_end / rss_start - 1, "worker_rss_mib_every_5_s": sampler.samples}
    return {**summarize(results, wall_s), "memory": memory}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    ap.add_argument("--requests", type=int, default=20000, help="stop after this many requests ...")
    ap.add_argument("--duration", type=float, default=70.0, help="... or after this many seconds")
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="seconds of the same load before the measured run (its RSS is the start)")
    ap.add_argument("--url", help=f"a running server on http://{LOOPBACK}:<port> (default: start gunicorn)")
    ap.add_argument("--out", help="write the results here as JSON")
    args = ap.parse_args(argv)
    texts = {"entropy": english(2000)[0], "patch": english(3000)[0]}
    load_before = os.getloadavg()
    if args.url:
        outcome, server_command, limits = measure(loopback_port(args.url), None, args, texts), args.url, None
    else:
        env = {"BLT_MODEL": str(REPO / "models" / "blt-studio"), "BLT_DEVICE": "cpu"}
        with Server(env) as server:
            outcome = measure(loopback_port(server.url), server.proc.pid, args, texts)
            server_command, limits = " ".join(server.command), server.get("/api/models")["limits"]
    record = {
        "command": "python " + " ".join(["bench/load.py"] + (argv if argv is not None else sys.argv[1:])),
        "server": server_command, "clients": args.clients, "max_requests": args.requests,
        "max_duration_s": args.duration, "warmup_s": args.warmup, "mix": KINDS,
        "request_sizes": {"entropy_text_bytes": 1000, "patch_text_bytes": 2000, "generate_max_new_bytes": 16},
        "app_limits": limits, "machine": machine(),
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "results": outcome,
        "targets": {"no_5xx": outcome["server_errors_5xx"] == 0,
                    "rss_growth_under_10_percent": None if outcome["memory"] is None
                    else outcome["memory"]["growth"] < 0.10},
    }
    print(json.dumps(record, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0 if all(v is not False for v in record["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
