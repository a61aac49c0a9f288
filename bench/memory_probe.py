"""Measure what one worst-case request adds to the worker's peak memory, beside app/memory.py's
estimate. Each case runs in a fresh process on the shipped model (CPU, float32): the app serves
short requests of every kind first (model loaded, code paths warm), then the kernel's peak-RSS
mark is reset (Linux: /proc/self/clear_refs) and the one request is sent through Flask's test
client; the case's peak is VmHWM after it minus VmRSS before it, in MiB.

    python bench/memory_probe.py          # a table; --json prints the rows as JSON

Linux only. Exit status 1 when a case fails (a request that does not answer 200).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from blt_core.default_model import SHIPPED_DIR

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app import create_app, memory  # noqa: E402

ASCII = ("Patches grow where the next byte is easy to guess and shrink where it is not. " * 220)[:16384]
WIDE = "\U0001F600" * 4096        # 16 kB of 4-byte characters: the largest per-byte answers
ONE_BYTE_PATCHES = {"mode": "static", "patch_size": 1}
CORPUS = (ASCII.encode() * 64)[:1_048_576]    # MAX_CORPUS_BYTES (1 MiB); a text/plain body (bytes)
# name -> (method, path, JSON body); texts at MAX_TEXT_BYTES (16 kB)
CASES = {
    "entropy": ("POST", "/api/entropy", {"text": WIDE}),
    "entropy detail": ("POST", "/api/entropy/detail", {"text": WIDE, "start": 16320, "length": 64, "top_k": 20}),
    **{f"patch {mode}": ("POST", "/api/patch", {"text": ASCII, "mode": mode, "max_patch_length": 1})
       for mode in ("entropy", "entropy_monotonic", "space")},
    "patch static, 4-byte chars": ("POST", "/api/patch", {"text": WIDE, **ONE_BYTE_PATCHES}),
    "compare": ("POST", "/api/compare", {"text": ASCII, "patch_size": 1, "max_patch_length": 1}),
    "figure json": ("GET", "/api/figures/training_curves?format=json", None),
    "figure html": ("GET", "/api/figures/training_curves?format=html", None),
    # a corpus of MAX_CORPUS_BYTES (slow: about 2 minutes on 2 idle cores)
    "corpus": ("POST", "/api/corpus", CORPUS),
    # the longest prompt the global model's context takes in two-byte patches
    "generate": ("POST", "/api/generate", {"prompt": ASCII[:4092], "max_new_bytes": 1, "mode": "static",
                                           "patch_size": 2}),
}


def _status_mib() -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def run_case(name: str) -> dict:
    """One case in this process (see the module docstring)."""
    app = create_app({"MODEL": str(SHIPPED_DIR), "DEVICE": "cpu"})
    client = app.test_client()
    for method, path, body in CASES.values():                       # warm up on short requests
        if isinstance(body, bytes):
            client.open(path, method=method, data=body[:600], content_type="text/plain")
            continue
        short = body and {k: (v[:40] if k in ("text", "prompt") else v) for k, v in body.items()}
        client.open(path.replace("training_curves", "languages"), method=method, json=short)
    method, path, body = CASES[name]
    before = _status_mib()["VmRSS"]
    Path("/proc/self/clear_refs").write_text("5")                     # VmHWM := VmRSS
    response = client.open(path, method=method, data=body, content_type="text/plain") if isinstance(body, bytes) \
        else client.open(path, method=method, json=body)
    peak = _status_mib()["VmHWM"] - before
    row = {"case": name, "status": response.status_code, "peak_mib": round(peak, 1),
           "answer_kib": round(len(response.data) / 1024), "resident_mib": round(before)}
    if path in ("/api/entropy", "/api/entropy/detail", "/api/patch", "/api/compare", "/api/corpus"):
        cfg = app.extensions["blt_model"].get().model.config
        row["estimate_mib"] = round(memory.analysis_peak_bytes(cfg, app.config["MAX_TEXT_BYTES"]) / memory.MIB, 1)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/memory_probe.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=CASES, help="run one case in this process (used by the others)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case)))
        return 0
    rows = []
    for name in CASES:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--case", name],
                              capture_output=True, text=True)
        rows.append(json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0
                    else {"case": name, "status": None, "error": done.stderr.strip().splitlines()[-1:]})
        if not args.json:
            print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if all(row["status"] == 200 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
