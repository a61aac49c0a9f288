"""Serving benchmark: concurrent streaming generations through the real gunicorn server, and the
library's own figure for the same model and settings in the same run.

    python3 bench/serve.py --model random:blt-1b --streams 1 8 --new-bytes 512 --out bench/results/serve_h100.json
    python3 bench/serve.py --model models/blt-studio --streams 1 4 --new-bytes 256 --out bench/results/serve_cpu.json

`random:<preset>` saves a seeded random-weight model of that preset (bf16 on CUDA) to a temporary
directory first, and serves it from there like any checkpoint. For each `--streams` N, N clients
start together, each POSTs /api/generate/stream (greedy, `--new-bytes` bytes, no EOS stop) and
reads every event; per round it reports each stream's bytes/s (its bytes over its own wall time,
prefill included) and decode bytes/s (the bytes after the first over the time after the first
came, as the library's own rate `timings["bytes_per_s"]` counts), the aggregate bytes/s (all
bytes over the round's wall time), time to the first byte p50/p95, the bytes per patch the
server reported, the worker's peak GPU memory and its garbage collections so far (/healthz).
`--threshold` (nats), `--patch-bytes` (a threshold solved on the server's own greedy continuation
for about that many bytes per patch) or `--static-patch` sets the patching; the library row runs
`model.generate` on the same checkpoint, prompt and settings in this process after the server
has stopped, and on CUDA the engine row the app's batch engine (one slot, the app's decode
options) on the rounds' request, without HTTP. Traffic goes to 127.0.0.1 only; every loop is bounded.
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import copy_bandwidth, weight_bytes_per_byte  # noqa: E402
from latency import machine, percentile  # noqa: E402
from server import Server  # noqa: E402

PROMPT = "Byte Latent Transformer models read raw bytes and "


def materialise(name: str, workdir: Path) -> str:
    """A checkpoint directory for `name`: itself, or a saved seeded random-weight preset."""
    if not name.startswith("random:"):
        return name
    from blt_core import BLT
    torch.manual_seed(0)
    model = BLT(name.split(":", 1)[1])
    if torch.cuda.is_available():
        model = model.to(torch.bfloat16)
    out = workdir / name.split(":", 1)[1]
    model.save_pretrained(out, max_shard_bytes=2**30)
    return str(out)


def stream_once(port: int, body: dict, out: list, start: threading.Barrier) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start.wait()
    t0 = time.perf_counter()
    conn.request("POST", "/api/generate/stream", body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    first, done, status = None, None, response.status
    for _ in range(100_000):
        line = response.readline()
        if not line:
            break
        if line.startswith(b"event: byte") and first is None:
            first = time.perf_counter() - t0
        elif line.startswith(b"data: ") and done is None and b'"stats"' in line:
            done = json.loads(line[6:])
        elif line.startswith(b"event: error"):
            status = "error event"
    conn.close()
    out.append({"status": status, "seconds": time.perf_counter() - t0, "first_byte_s": first,
                "new_bytes": done["stats"]["new_bytes"] if done else 0,
                "global_steps": done["stats"]["global_steps"] if done else 0})


def solve_threshold(port: int, body: dict, patch_bytes: float, tries: int = 6) -> tuple[float, list]:
    """A threshold that gives about `patch_bytes` bytes per patch on what the server itself
    generates (POST /api/generate, the benchmark's body): each try takes the entropy quantile for
    that share of the continuation made at the last try's threshold (the model's default first),
    and the try whose own continuation came out nearest the aim wins. Patching changes what a BLT
    generates, so one quantile is rarely on the aim; and the serving path must make the
    continuation (bf16 rounding differs between paths, and random weights sit near ties).
    Returns the threshold and every try's (threshold, bytes per patch)."""
    threshold, tried = None, []
    for _ in range(tries):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("POST", "/api/generate", body=json.dumps({**body, "threshold": threshold}),
                     headers={"Content-Type": "application/json"})
        out = json.loads(conn.getresponse().read())
        conn.close()
        if threshold is not None:
            tried.append((threshold, round(len(out["bytes"]) / max(1, out["stats"]["global_steps"]), 2)))
        threshold = float(torch.quantile(torch.tensor(out["entropies"]), 1 - 1 / patch_bytes))
    return min(tried, key=lambda t: abs(t[1] - patch_bytes))[0], tried


def decode_rate(new_bytes: int, seconds: float, first_byte_s: float | None) -> float | None:
    """Bytes after the first over the time after the first came (None for fewer than 2 bytes)."""
    if first_byte_s is None or new_bytes < 2 or seconds <= first_byte_s:
        return None
    return round((new_bytes - 1) / (seconds - first_byte_s), 1)


def load_library_model(model_dir: str, device: str):
    from blt_core import BLT
    if device == "cuda":
        # as the app does (app/models.py): with cuDNN's attention the prefill rounds otherwise in
        # bf16, and greedy text on random weights follows (the server's 4.61 bytes/patch at its
        # threshold were 1.81 here with cuDNN, 4.57 without: long_patches_h100_blt1b_cudnn_off.json)
        torch.backends.cuda.enable_cudnn_sdp(False)
    return BLT.from_pretrained(model_dir, device=device)


def library_row(model, device: str, kw: dict, rounds: list) -> dict:
    """The library's figure for the same settings; also each one-stream round's share of the
    roofline at the patch size the server reported."""
    bandwidth = copy_bandwidth(torch.device(device))
    for row in rounds:
        if bandwidth and row["streams"] == 1 and row["mean_patch_bytes"]:
            roof = bandwidth / weight_bytes_per_byte(model, 1 / row["mean_patch_bytes"])
            row["roofline_bytes_per_s"] = round(roof)
            row["share_of_roofline"] = round(row["aggregate_bytes_per_s"] / roof, 3)
            decode = min(row["per_stream_decode_bytes_per_s"], default=None)
            row["decode_share_of_roofline"] = decode and round(decode / roof, 3)
    model.generate(PROMPT, **kw)                       # warm-up: compile and capture for these shapes
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    res = model.generate(PROMPT, **kw)
    share = res.global_steps / max(1, len(res.bytes))
    roof = bandwidth / weight_bytes_per_byte(model, share) if bandwidth else None
    return {"bytes_per_s": res.timings["bytes_per_s"], "mean_patch_bytes": round(1 / share, 2) if share else None,
            "roofline_bytes_per_s": roof and round(roof), "share_of_roofline": roof and round(res.timings["bytes_per_s"] / roof, 3)}


def engine_row(model, device: str, new_bytes: int, patching: dict) -> dict:
    """The app's batch engine in this process, without HTTP: one slot, the app's decode options,
    the rounds' request once to warm up (compile, capture) and once timed, from submit to its
    result (and from its first byte, as the decode rate). Beside the one-stream rounds it tells
    the engine's time from the server's."""
    from app.models import decode_options
    from blt_core.generation.batching import BatchEngine
    from blt_core.patching import PatchingParams
    from blt_core.sampling import SamplingParams
    engine = BatchEngine(model, 1, decode_options("fastest", device))
    params = SamplingParams(max_new_bytes=new_bytes, temperature=0, stop_at_eos=False)
    try:
        for _ in range(2):                             # the first warms up
            before, t0, first = dict(engine.counts), time.perf_counter(), None
            for event in engine.submit(PROMPT, params, PatchingParams(**patching)):
                first = first if first is not None else time.perf_counter() - t0
                result = event
            wall = time.perf_counter() - t0
    finally:
        engine.stop()
    counts = {k: engine.counts[k] - before[k] for k in engine.counts}
    per_step = lambda key: round(1000 * counts[key] / max(1, counts["steps"]), 4)   # noqa: E731
    return {"bytes_per_s": round(len(result.bytes) / wall, 1),
            "decode_bytes_per_s": decode_rate(len(result.bytes), wall, first),
            "mean_patch_bytes": round(len(result.bytes) / max(1, result.global_steps), 2),
            "gpu_ms_a_step": per_step("step_gpu_s") if device == "cuda" else None,
            "host_gap_ms_a_step": per_step("between_steps_s") if device == "cuda" else None,
            "speculative_steps": counts["speculative_steps"], "decoder_first_steps": counts["decoder_first_steps"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/blt-studio")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--new-bytes", type=int, default=256)
    ap.add_argument("--threshold", type=float)
    ap.add_argument("--patch-bytes", type=float,
                    help="solve a threshold for about this many bytes per patch (on the server's own continuation)")
    ap.add_argument("--static-patch", type=int, help="patch statically in patches of this many bytes instead")
    ap.add_argument("--env", nargs="*", default=[], help="extra KEY=VALUE settings for the server")
    ap.add_argument("--library-options", default="fastest",
                    help="'fastest' (DecodeOptions.fastest, what the app picks) or comma-separated DecodeOptions "
                         "flags, e.g. cuda_graphs,compile; 'none' skips the library row")
    ap.add_argument("--no-engine-row", action="store_true",
                    help="skip the row of the app's batch engine run in this process without HTTP (CUDA only)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"command": "python3 bench/serve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
              "model": args.model, "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = materialise(args.model, Path(tmp))
        patching = ({"mode": "static", "patch_size": args.static_patch} if args.static_patch else
                    {"threshold": args.threshold})
        body = {"prompt": PROMPT, "max_new_bytes": args.new_bytes, "temperature": 0, "stop_at_eos": False, **patching}
        env = {"BLT_MODEL": model_dir, "BLT_MAX_NEW_BYTES": str(max(args.new_bytes, 1024)),
               "BLT_GENERATION_SLOTS": str(max(args.streams)), **dict(kv.split("=", 1) for kv in args.env)}
        with Server(env, log_path=Path(tmp) / "server.log") as server:
            t0 = time.monotonic()
            while (health := server.get("/healthz"))["status"] in ("loading", "warming"):
                if time.monotonic() - t0 > 900:
                    raise SystemExit("the server did not get ready in 900 s")
                time.sleep(0.5)
            result["ready_after_s"] = round(time.monotonic() - t0, 1)
            result["serving"] = health["model"].get("serving")
            if args.patch_bytes is not None:
                patching["threshold"], result["threshold_tries"] = solve_threshold(server.port, body, args.patch_bytes)
                body.update(patching)
            result["threshold"] = patching.get("threshold")
            for i, n in enumerate([min(args.streams)] + args.streams):    # round 0 warms up, uncounted
                out, start = [], threading.Barrier(n)
                threads = [threading.Thread(target=stream_once, args=(server.port, body, out, start)) for _ in range(n)]
                t = time.perf_counter()
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                wall = time.perf_counter() - t
                firsts = [r["first_byte_s"] for r in out if r["first_byte_s"] is not None]
                total = sum(r["new_bytes"] for r in out)
                model_health = server.get("/healthz")["model"]
                row = {"streams": n, "statuses": sorted({str(r["status"]) for r in out}),
                       "aggregate_bytes_per_s": round(total / wall, 1),
                       "per_stream_bytes_per_s": sorted(round(r["new_bytes"] / r["seconds"], 1) for r in out),
                       "per_stream_decode_bytes_per_s": sorted(
                           rate for r in out if (rate := decode_rate(r["new_bytes"], r["seconds"], r["first_byte_s"]))),
                       "first_byte_p50_s": firsts and round(percentile(firsts, 0.5), 3),
                       "first_byte_p95_s": firsts and round(percentile(firsts, 0.95), 3),
                       "mean_patch_bytes": round(total / max(1, sum(r["global_steps"] for r in out)), 2),
                       "gpu_peak_mib": model_health.get("gpu_peak_mib"), "serving": model_health.get("serving"),
                       "worker_gc": model_health.get("gc")}
                if i:
                    result["rounds"].append(row)
                print(json.dumps(row), flush=True)
        # the engine row on CUDA only: on the CPU the app runs all torch work on one thread
        # (app/torch_thread.py), and this process's second OpenMP team would slow the engine
        engine = not args.no_engine_row and device == "cuda"
        model = load_library_model(model_dir, device) if args.library_options != "none" or engine else None
        if args.library_options != "none":
            from blt_core.generation import DecodeOptions
            options = (DecodeOptions.fastest(device) if args.library_options == "fastest" else
                       DecodeOptions(**{flag: True for flag in args.library_options.split(",") if flag}))
            kw = dict(max_new_bytes=args.new_bytes, stop_at_eos=False, options=options, **patching)
            result["library"] = library_row(model, device, kw, result["rounds"])
            print(json.dumps({"library": result["library"]}), flush=True)
        if engine:
            result["engine"] = engine_row(model, device, args.new_bytes, patching)
            print(json.dumps({"engine": result["engine"]}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
