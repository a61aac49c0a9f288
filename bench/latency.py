"""Latency of BLT Studio's analysis endpoints under real gunicorn, on CPU, with the shipped model.

    python bench/latency.py --out bench/results/latency_cpu.json

Measures POST /api/patch on 2 kB of English text and POST /api/entropy on 10 kB, one request at
a time after a warm-up, and reports p50/p95 wall time per request as the client sees it (HTTP,
JSON both ways). Targets (issue #5): patch 2 kB p50 <= 100 ms, entropy 10 kB p50 <= 0.5 s.
Every request sends a different text (another offset into the source), so the server's entropy
memo (blt_core/entropy_memo.py) has no shared beginning to reuse: these are a new text's costs.
`entropy_10kB_typing` is the memo's case: the same 10 kB with one more character each request.
The text is Debian's GPL-3 licence text (English prose on every Debian system; README.md else).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server import REPO, Server  # noqa: E402

ENGLISH = Path("/usr/share/common-licenses/GPL-3")
TARGETS_S = {"patch_2kB": 0.100, "entropy_10kB": 0.500}


def english(n_bytes: int, offset: int = 0) -> tuple[str, str]:
    """n_bytes of English prose from `offset` bytes into the source (wrapping round), and its path."""
    source = ENGLISH if ENGLISH.is_file() else REPO / "README.md"
    data = " ".join(source.read_text().split()).encode()          # prose without the layout whitespace
    data = (data[offset % len(data):] + b" " + data) * (1 + n_bytes // len(data))
    return data[:n_bytes].decode("utf-8", errors="ignore"), str(source)


def post_seconds(url: str, body: dict) -> float:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return time.perf_counter() - t0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(url: str, body_of, n: int, warmup: int, label: str) -> dict:
    """body_of(i): the i-th request's body (warm-up requests are -1, -2, ...)."""
    for i in range(warmup):
        post_seconds(url, body_of(-1 - i))
    times = [post_seconds(url, body_of(i)) for i in tqdm(range(n), desc=label, unit="req")]
    return {"requests": n, "warmup": warmup, "p50_s": statistics.median(times), "p95_s": percentile(times, 0.95),
            "mean_s": statistics.fmean(times), "min_s": min(times), "max_s": max(times)}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=50, help="measured requests per endpoint")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", help="write the results here as JSON")
    args = ap.parse_args(argv)
    patch_text, source = english(2000)
    entropy_text, _ = english(10000)
    fresh = lambda n_bytes: lambda i: {"text": english(n_bytes, 997 * (i + args.warmup + 1))[0]}  # noqa: E731
    env = {"BLT_MODEL": str(REPO / "models" / "blt-studio"), "BLT_DEVICE": "cpu"}
    load_before = os.getloadavg()       # the machine may be shared: say how busy it was
    with Server(env) as server:
        results = {
            "patch_2kB": measure(server.url + "/api/patch", fresh(2000), args.requests, args.warmup, "patch 2 kB"),
            "entropy_10kB": measure(server.url + "/api/entropy", fresh(10000), args.requests, args.warmup,
                                    "entropy 10 kB"),
            "entropy_10kB_typing": measure(server.url + "/api/entropy",
                                           lambda i: {"text": entropy_text + "x" * (i + args.warmup + 1)},
                                           args.requests, args.warmup, "entropy 10 kB, typed into"),
        }
        model = server.get("/api/models")["model"]
        server_command = " ".join(server.command)
    for name, target in TARGETS_S.items():
        results[name].update(target_p50_s=target, meets_target=results[name]["p50_s"] <= target)
    record = {
        "command": "python " + " ".join(["bench/latency.py"] + (argv if argv is not None else sys.argv[1:])),
        "server": server_command, "model": model["name"], "device": model["device"],
        "worker_torch_threads": model["torch_threads"], "text_source": source,
        "text_bytes": {"patch": len(patch_text.encode()), "entropy": len(entropy_text.encode())},
        "texts": "a different text per request (offsets 997 bytes apart), except entropy_10kB_typing: one "
                 "character more per request",
        "machine": machine(), "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "results": results,
    }
    print(json.dumps(record, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
