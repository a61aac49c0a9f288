"""Bounded loopback soak of BLT Studio under real gunicorn (the repository's config, the shipped
model on CPU): slow and idle clients, worst-case memory, and hostile framing.

    python bench/soak.py --out bench/results/soak_cpu.json        # all three phases, ~3 minutes

Phases (each starts its own server on a free 127.0.0.1 port; traffic goes to loopback only, and
every loop is bounded in count and in time):
  slow     --held connections are kept open for --slow-s seconds, a third of each kind: a request
           line and then silence, a request whose 2 kB body trickles at 1 byte/s, and a GET of the
           4.8 MB plotly.min.js whose reader never reads (4 kB receive buffer); a dropped one is
           reopened. Meanwhile one normal client polls /healthz and /api/patch (2 kB) in turn.
           Reports held connections, the normal client's latency p50/p99 and its failures.
           Targets (issue 16): 256 held, /healthz p99 <= 1 s, /api/patch p99 <= 2 s.
  memory   --clients clients send worst-case requests for --memory-s seconds: 16 kB texts to
           /api/patch (every mode, byte patches included), /api/entropy and /api/compare, every
           figure in json and html, and generations of the longest allowed length; the gunicorn
           worker's RSS is sampled every 0.1 s. Target: peak <= 1,200 MiB.
  hostile  bad chunked framing, over-long request lines and headers, a chunked body of exactly
           the cap, symlink loops in plot_data/ and exports/, and a server whose model cannot
           load; counts 5xx answers and answers that contain a server path. Target: 0 and 0.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import english, machine, percentile  # noqa: E402
from load import worker_rss_kib  # noqa: E402
from server import REPO, Server  # noqa: E402

HOST = "127.0.0.1"
MODEL = str(REPO / "models" / "blt-studio")
MODES = ["entropy", "entropy_monotonic", "static", "space"]
FIGURES = ["languages", "scaling", "threshold_sweep", "pooling", "training_curves", "paper_reference"]


def post(port, path, body, timeout=120) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read(), time.perf_counter() - t0
    finally:
        conn.close()


def get(port, path, timeout=120) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read(), time.perf_counter() - t0
    finally:
        conn.close()


def raw(port, data: bytes, timeout=10) -> bytes:
    """Send raw bytes, read the answer until the server closes (or timeout)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
        return out


def wait_ready(port, deadline_s=120) -> None:
    deadline = time.monotonic() + deadline_s
    while json.loads(get(port, "/healthz")[1])["status"] == "loading":
        if time.monotonic() > deadline:
            raise RuntimeError("the model did not load in time")
        time.sleep(0.2)


def stats(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"n": len(values), "p50_s": percentile(values, 0.5), "p99_s": percentile(values, 0.99), "max_s": max(values)}


# ---------------------------------------------------------------------------------- slow clients
class Hostile:
    """One held connection of a kind; reopened by `keep` when the server drops it."""

    KINDS = ("head", "trickle", "reader")

    def __init__(self, port: int, kind: str):
        self.port, self.kind = port, kind
        self.sock, self.next_byte_at = None, 0.0

    def open(self) -> None:
        s = socket.socket()
        if self.kind == "reader":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect((HOST, self.port))
        if self.kind == "head":
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
        elif self.kind == "trickle":
            s.sendall(b"POST /api/patch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 2000\r\n\r\n{")
        else:
            s.sendall(b"GET /static/vendor/plotly.min.js HTTP/1.1\r\nHost: x\r\n\r\n")
        s.setblocking(False)
        self.sock, self.next_byte_at = s, time.monotonic() + 1

    def alive(self) -> bool:
        if self.sock is None:
            return False
        if self.kind == "reader":
            return True     # never reads: a dropped one shows as an error on the next check below
        try:
            return self.sock.recv(1, socket.MSG_PEEK) != b""     # a server answer or close: dropped
        except BlockingIOError:
            return True
        except OSError:
            return False

    def keep(self) -> int:
        """Keep the connection open (1 if it had to be reopened), trickling a byte a second."""
        reopened = 0
        if not self.alive():
            self.close()
            self.open()
            reopened = 1
        elif self.kind == "trickle" and time.monotonic() >= self.next_byte_at:
            try:
                self.sock.send(b" ")
                self.next_byte_at += 1
            except OSError:
                self.close()
        elif self.kind == "reader":
            try:                    # a zero-byte send fails once the server has reset the connection
                self.sock.send(b"")
            except OSError:
                self.close()
        return reopened

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def slow_phase(args) -> dict:
    env = {"BLT_MODEL": MODEL, "BLT_DEVICE": "cpu"}
    text = english(2000)[0]
    with Server(env) as server:
        wait_ready(server.port)
        conns = [Hostile(server.port, Hostile.KINDS[i % 3]) for i in range(args.held)]
        for c in conns:
            c.open()
        reopened, held_min = Counter(), args.held
        health, patch, failures = [], [], Counter()
        stop = time.monotonic() + args.slow_s
        done = threading.Event()

        def normal_client():
            while not done.is_set() and time.monotonic() < stop:
                for path, out in (("/healthz", health), ("/api/patch", patch)):
                    try:
                        status, _, seconds = (get(server.port, path, timeout=30) if path == "/healthz"
                                              else post(server.port, path, {"text": text}, timeout=30))
                        out.append(seconds)
                        if status != 200:
                            failures[f"{path} {status}"] += 1
                    except OSError as err:
                        failures[f"{path} {type(err).__name__}"] += 1
                        out.append(30.0)
                time.sleep(0.05)

        client = threading.Thread(target=normal_client)
        client.start()
        while time.monotonic() < stop:
            for c in conns:
                reopened[c.kind] += c.keep()
            held_min = min(held_min, sum(c.sock is not None for c in conns))
            time.sleep(0.25)
        done.set()
        client.join()
        for c in conns:
            c.close()
    return {"held": args.held, "held_min": held_min, "seconds": args.slow_s, "reopened": dict(reopened),
            "healthz": stats(health), "patch_2kb": stats(patch), "failures": dict(failures),
            "targets_met": bool(health and patch and percentile(health, 0.99) <= 1.0
                                and percentile(patch, 0.99) <= 2.0 and not failures)}


# ---------------------------------------------------------------------------------- memory
def worst_requests(rng: random.Random, long_text: str, max_new: int):
    kind = rng.choice(["patch", "patch", "entropy", "compare", "figure", "generate"])
    if kind == "patch":
        mode = rng.choice(MODES + ["static1"])
        body = {"text": long_text, "mode": "static", "patch_size": 1} if mode == "static1" else \
            {"text": long_text, "mode": mode}
        return "POST", "/api/patch", body
    if kind == "entropy":
        return "POST", "/api/entropy", {"text": long_text}
    if kind == "compare":
        return "POST", "/api/compare", {"text": long_text}
    if kind == "figure":
        return "GET", f"/api/figures/{rng.choice(FIGURES)}?format={rng.choice(['json', 'html'])}", None
    return "POST", "/api/generate", {"prompt": long_text[:256], "max_new_bytes": max_new, "temperature": 0.8,
                                     "seed": rng.randrange(1000)}


def memory_phase(args) -> dict:
    env = {"BLT_MODEL": MODEL, "BLT_DEVICE": "cpu"}
    long_text = english(16384)[0]
    with Server(env) as server:
        wait_ready(server.port)
        limits = json.loads(get(server.port, "/api/models")[1])["limits"]
        master = server.proc.pid
        idle_kib = worker_rss_kib(master)
        statuses, peak, stop = Counter(), idle_kib, time.monotonic() + args.memory_s

        def client(seed):
            rng = random.Random(seed)
            for _ in range(10_000):
                if time.monotonic() >= stop:
                    return
                method, path, body = worst_requests(rng, long_text, limits["max_new_bytes"])
                try:
                    status = (post(server.port, path, body) if method == "POST" else get(server.port, path))[0]
                except OSError as err:
                    status = type(err).__name__
                statuses[f"{path.split('?')[0].rsplit('/', 1)[-1] if 'figures' in path else path} {status}"] += 1

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(args.clients)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, worker_rss_kib(master))
            time.sleep(0.1)
        end_kib = worker_rss_kib(master)
    return {"clients": args.clients, "seconds": args.memory_s, "text_bytes": len(long_text.encode()),
            "rss_mib": {"idle": round(idle_kib / 1024, 1), "peak": round(peak / 1024, 1), "end": round(end_kib / 1024, 1)},
            "statuses": dict(sorted(statuses.items())),
            "fivexx": sum(n for k, n in statuses.items() if k.split()[-1].startswith("5")),
            "target_met": peak / 1024 <= 1200}


# ---------------------------------------------------------------------------------- hostile
BODY = b'{"text": "x"}'      # 13 bytes of valid JSON: only the framing can be wrong
FRAMING = {
    "invalid chunk size": b"zz\r\n" + BODY + b"\r\n0\r\n\r\n",
    "missing chunk terminator": b"d\r\n" + BODY + b"XY0\r\n\r\n",
    "bad chunk extension": b"d;\x01=\x02\r\n" + BODY + b"\r\n0\r\n\r\n",
    "bad trailer": b"d\r\n" + BODY + b"\r\n0\r\nno colon in this trailer\r\n\r\n",
    "truncated chunk": b"ffff\r\n" + BODY,
}


def chunked(path: str, payload: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode() + payload


def status_of(answer: bytes) -> int | None:
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def hostile_phase(args) -> dict:
    cases, fivexx, leaks = {}, [], []
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    secret_paths = [str(REPO), str(tmp)]
    try:
        plot = tmp / "plot_data"
        shutil.copytree(REPO / "plot_data", plot)
        exports = tmp / "exports"
        exports.mkdir()
        for folder in (plot, exports):
            os.symlink("loop", folder / "loop")
            os.symlink("b.json", folder / "a.json")
            os.symlink("a.json", folder / "b.json")
        broken = tmp / "broken-model"
        broken.mkdir()
        (broken / "config.json").write_text("{not json")

        def record(name: str, status: int | None, body: bytes) -> None:
            cases[name] = status
            if status is None or status >= 500:
                fivexx.append(name)
            if any(p.encode() in body for p in secret_paths):
                leaks.append(name)

        env = {"BLT_MODEL": MODEL, "BLT_DEVICE": "cpu", "BLT_PLOT_DATA_DIR": str(plot), "BLT_EXPORT_DIR": str(exports)}
        with Server(env) as server:
            wait_ready(server.port)
            limits = json.loads(get(server.port, "/api/models")[1])["limits"]
            for name, payload in FRAMING.items():
                answer = raw(server.port, chunked("/api/patch", payload), timeout=30)   # a truncated body: 408
                record(f"framing: {name}", status_of(answer), answer)
            cap = limits["max_request_bytes"]
            body = json.dumps({"text": "x"}).encode()
            exact = body + b" " * (cap - len(body))
            for framing, head in (("chunked", f"Transfer-Encoding: chunked\r\n\r\n{cap:x}\r\n".encode()),
                                  ("content-length", f"Content-Length: {cap}\r\n\r\n".encode())):
                tail = b"\r\n0\r\n\r\n" if framing == "chunked" else b""
                answer = raw(server.port, b"POST /api/patch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\n" + head + exact + tail, timeout=30)
                record(f"body of exactly the cap, {framing}", status_of(answer), answer)
            answer = raw(server.port, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            record("request line of 20 kB", status_of(answer), answer)
            answer = raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            record("header of 20 kB", status_of(answer), answer)
            for path in ("/api/visualizations", "/api/figures", "/api/figures/loop", "/data/loop", "/data/a.json",
                         "/visualizations/loop"):
                status, data, _ = get(server.port, path)
                record(f"symlink loop: GET {path}", status, data)
        with Server({"BLT_MODEL": str(broken), "BLT_DEVICE": "cpu"}) as server:
            wait_ready(server.port)
            for method, path in (("GET", "/healthz"), ("GET", "/api/models"), ("POST", "/api/patch"),
                                 ("POST", "/api/generate")):
                status, data, _ = get(server.port, path) if method == "GET" else \
                    post(server.port, path, {"text": "x"} if path.endswith("patch") else {"prompt": "x"})
                # 503 is the documented answer of a model endpoint while the model cannot load
                cases[f"degraded: {method} {path}"] = status
                if any(p.encode() in data for p in secret_paths):
                    leaks.append(f"degraded: {method} {path}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"cases": cases, "fivexx": fivexx, "server_paths_in": leaks, "targets_met": not fivexx and not leaks}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phases", nargs="+", default=["slow", "memory", "hostile"], choices=["slow", "memory", "hostile"])
    ap.add_argument("--held", type=int, default=256, help="slow/idle connections held open")
    ap.add_argument("--slow-s", type=float, default=40.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--memory-s", type=float, default=60.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    result = {"command": "python bench/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "model": "models/blt-studio"}
    for phase in args.phases:
        t0 = time.monotonic()
        result[phase] = {"slow": slow_phase, "memory": memory_phase, "hostile": hostile_phase}[phase](args)
        result[phase]["wall_s"] = round(time.monotonic() - t0, 1)
        print(json.dumps({phase: result[phase]}, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
