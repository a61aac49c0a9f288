"""Generation benchmark: blt_core's cached greedy decoding vs transformers' BltForCausalLM.generate
(use_cache=False, its recommended setting; use_cache=True does not reproduce BLT's patching) on the
same weights, in one run.

For each model size: bytes/s and ms per byte (batch 1, greedy), the share of steps that ran the
global model, peak GPU memory, and the memory-bandwidth roofline: the bytes of weights a generated
byte must read (entropy model, encoder and decoder every byte; global model and the patch glue per
completed patch) divided by the GPU's copy bandwidth measured in the same run.

With random weights every entropy is above the 1.3354 threshold, so every byte is a patch (global
share 1, the worst case); a second blt_core row uses a threshold at the 78th percentile of the
model's entropies, which gives about 4.5 bytes per patch as in the paper.

    python3 bench/generate.py --presets blt-1b models/blt-studio --out bench/results/generate_h100.json   # GPU
    python3 bench/generate.py --presets models/blt-studio --out bench/results/generate_cpu_blt_studio.json
    python3 bench/generate.py --presets blt-tiny --new-bytes 256 --hf-new-bytes 64 --out bench/results/generate_cpu.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer import model_pair  # noqa: E402
from blt_core.generation import DecodeOptions  # noqa: E402

PROMPT = "Byte Latent Transformer models read raw bytes and "
# blt_core's paths: name -> (label, DecodeOptions)
VARIANTS = {
    "eager": ("eager", DecodeOptions()),
    "graphs": ("cuda graphs of the step parts", DecodeOptions(cuda_graphs=True)),
    "graphs+compile": ("cuda graphs of the step parts + torch.compile", DecodeOptions(cuda_graphs=True, compile=True)),
    "speculative+compile": ("speculative greedy graph + torch.compile",
                            DecodeOptions(cuda_graphs=True, compile=True, speculative=True)),
    "graphs+kernels": ("cuda graphs of the step parts + compile + fused layer kernels",
                       DecodeOptions(cuda_graphs=True, compile=True, kernels=True)),
    "speculative+kernels": ("speculative greedy graph + compile + fused layer kernels",
                            DecodeOptions(cuda_graphs=True, compile=True, speculative=True, kernels=True)),
}
PEERS = ("generate", "generate-suppressed", "forward-loop")


def copy_bandwidth(device) -> float | None:
    """Bytes/s of a large device-to-device copy, counting bytes read and written."""
    if device.type != "cuda":
        return None
    x = torch.empty(2 * 2**30, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(5):
        y.copy_(x)
    torch.cuda.synchronize()
    return 2 * x.numel() * 5 / (time.perf_counter() - t)


def weight_bytes_per_byte(model, global_share: float) -> float:
    """Bytes of parameters read to generate one byte (hash rows: one row per table)."""
    size = lambda mod: sum(p.numel() * p.element_size() for p in mod.parameters())
    enc, dec, cfg = model.local_encoder, model.local_decoder, model.config
    elt = model.lm_head.weight.element_size()
    cross_e = enc.cross_attn_layers[-1]
    per_byte = (size(model.entropy_model) if model.entropy_model else 0) + size(enc.layers) \
        + (cross_e.kv_proj.weight.numel() + cross_e.k_norm.weight.numel()) * elt \
        + cfg.encoder.dim * elt * (1 + cfg.n_hash_tables) + size(dec.layers) + size(dec.norm) + size(model.lm_head) \
        + sum((c.q_proj.weight.numel() + c.o_proj.weight.numel() + c.q_norm.weight.numel()) * elt
              for c in dec.cross_attn_layers)
    per_patch = size(model.global_transformer) + size(enc.patch_embedding_projection) \
        + (cross_e.q_proj.weight.numel() + cross_e.o_proj.weight.numel()) * elt + size(dec.patch_embedding_projection) \
        + sum((c.kv_proj.weight.numel() + c.k_norm.weight.numel()) * elt
              for c in dec.cross_attn_layers)
    return per_byte + global_share * per_patch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["blt-1b", "blt-tiny"])
    ap.add_argument("--new-bytes", type=int, default=512)
    ap.add_argument("--hf-new-bytes", type=int, default=64)
    ap.add_argument("--dtype", default=None, help="default bfloat16 on CUDA, float32 on CPU")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: all on CUDA, eager on CPU")
    ap.add_argument("--tuned", nargs="*", choices=list(VARIANTS), default=None,
                    help="variants to repeat at a threshold for ~4.5 bytes/patch (random weights only); "
                         "default: graphs+compile and speculative+compile on CUDA, eager on CPU")
    ap.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS))
    ap.add_argument("--out")
    args = ap.parse_args()

    import transformers

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    rows = []

    def emit(**kw):
        print(json.dumps(kw), flush=True)
        rows.append(kw)

    bandwidth = copy_bandwidth(device)
    emit(torch=torch.__version__, transformers=transformers.__version__, python=platform.python_version(),
         device=torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads",
         dtype=str(dtype), copy_bandwidth_GBps=bandwidth and round(bandwidth / 1e9, 1))
    for name in args.presets:
        hf, ours = model_pair(name, device, dtype)
        ids = torch.tensor([ours.tokenizer.encode(PROMPT)], device=device)

        # transformers: generate() exactly as the reference anchor, then with the special ids
        # suppressed as blt_core does (same greedy bytes), and a bare loop of full forwards.
        n = args.hf_new_bytes
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

        def bare_loop(x, steps):
            for _ in range(steps):
                logits = hf(x, use_cache=False).logits[:, -1]
                logits[:, :4] = -float("inf")
                x = torch.cat([x, logits.argmax(-1, keepdim=True)], 1)
            return x

        peers = {
            "generate": ("transformers generate(use_cache=False)", lambda k: hf.generate(
                ids, max_new_tokens=k, min_new_tokens=k, do_sample=False, use_cache=False)),
            "generate-suppressed": ("transformers generate(use_cache=False), special ids suppressed", lambda k: hf.generate(
                ids, max_new_tokens=k, min_new_tokens=k, do_sample=False, use_cache=False, suppress_tokens=[0, 1, 2, 3])),
            "forward-loop": ("transformers forward loop (use_cache=False)", lambda k: bare_loop(ids, k)),
        }
        hf_bps = {}
        with torch.no_grad():
            for key in args.peers:
                label, fn = peers[key]
                fn(min(n, 64))             # warm-up: kernels and library heuristics (eager, nothing to compile)
                sync()
                t = time.perf_counter()
                hf_out = fn(n)
                sync()
                hf_s = time.perf_counter() - t
                hf_bps[label] = n / hf_s
                emit(model=name, impl=label, new_bytes=n, seconds=round(hf_s, 3), bytes_per_s=round(n / hf_s, 2),
                     ms_per_byte=round(1000 * hf_s / n, 3))
        new_ids = hf_out[0, ids.shape[1]:].tolist()
        # compared up to the first special id (plain generate() may emit one; blt_core suppresses them)
        hf_bytes = bytes(i - 4 for i in new_ids[:next((j for j, i in enumerate(new_ids) if i < 4), len(new_ids))])
        peer = min(hf_bps.values())  # speed-ups are quoted against transformers' generate (slowest peer)
        peer_best = max(hf_bps.values())

        ent = ours.entropies(torch.tensor([ours.tokenizer.encode(PROMPT * 8)], device=device))
        tuned = float(torch.quantile(ent.float(), 0.78))
        trained = Path(name).is_dir()          # a trained model patches by its own threshold
        cuda = device.type == "cuda"
        names = args.variants or (list(VARIANTS) if cuda else ["eager"])
        again = args.tuned if args.tuned is not None else (["graphs+compile", "speculative+compile"] if cuda else ["eager"])
        variants = [(VARIANTS[v][0], VARIANTS[v][1], None) for v in names]
        if not trained:
            variants += [(VARIANTS[v][0] + ", threshold for ~4.5 B/patch", VARIANTS[v][1], tuned) for v in again]
        for label, options, threshold in variants:
            kw = dict(max_new_bytes=args.new_bytes, stop_at_eos=False, threshold=threshold, options=options)
            ours.generate(PROMPT, **kw)            # warm-up: compiles and warms kernels for these shapes
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            res = ours.generate(PROMPT, **kw)
            share = res.global_steps / len(res.bytes)
            roof = bandwidth / weight_bytes_per_byte(ours, share) if bandwidth else None
            bps = res.timings["bytes_per_s"]
            same = next((i for i, (a, b) in enumerate(zip(res.bytes, hf_bytes)) if a != b), min(len(res.bytes), len(hf_bytes)))
            emit(model=name, impl=f"blt_core {label}", new_bytes=len(res.bytes), bytes_per_s=bps,
                 ms_per_byte=res.timings["ms_per_byte"], speedup_vs_transformers_generate=round(bps / peer, 1),
                 speedup_vs_fastest_transformers_path=round(bps / peer_best, 1),
                 global_step_share=round(share, 3), mean_patch_bytes=round(1 / share, 2),
                 threshold=threshold if threshold is not None else ours.config.patching_threshold,
                 peak_mem_GiB=round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
                 weights_read_per_byte_MB=round(weight_bytes_per_byte(ours, share) / 1e6, 1),
                 roofline_bytes_per_s=roof and round(roof), share_of_roofline=roof and round(bps / roof, 3),
                 greedy_prefix_equal_to_transformers=same if threshold is None else None)
        del hf, ours
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"command": " ".join(["python3"] + sys.argv), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
