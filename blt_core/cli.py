"""Command line: `python -m blt_core {demo,entropy,patch,tokens,corpus,generate,info}`.

    python -m blt_core patch "Daenerys Targaryen is in Game of Thrones" --json
    echo "some text" | python -m blt_core entropy - --model path/to/checkpoint
    python -m blt_core tokens "Bytes, not tokens." --json      # GPT-2/GPT-4/GPT-4o tokens beside BLT patches
    python -m blt_core corpus --file notes.txt --json          # bits per byte, patches, passages (slow on CPU)
    python -m blt_core generate "Once upon a time" --max-new-bytes 200 --temperature 0.8 --seed 1

Text comes from the argument, from standard input when it is '-', or from --file. Errors go to
standard error with exit status 2 (bad input) or 1 (model could not be loaded).
"""
from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from dataclasses import asdict

from . import bpe, corpus
from .config import PATCHING_MODES, to_dict
from .default_model import RANDOM_NOTE, load_model
from .generation import DecodeOptions
from .patching import PatchingParams

DEMO_TEXT = "Daenerys Targaryen is in Game of Thrones, a fantasy epic by George R.R. Martin."


def _text(args) -> str | bytes:
    if args.file:
        with open(args.file, "rb") as f:
            return f.read()
    if args.text == "-":
        return sys.stdin.buffer.read()
    return args.text


def show_byte(b: int | None) -> str:
    """A byte as a short printable label: BOS for None, the character for printable ASCII."""
    if b is None:
        return "<s>"
    if 32 < b < 127:
        return chr(b)
    return {32: "␣", 10: "\\n", 9: "\\t"}.get(b, f"x{b:02x}")


def patch_report(loaded, text, patching: PatchingParams = PatchingParams()) -> dict:
    """Everything `patch` shows, as a JSON-ready dict (the web app serves the same shape), with
    the patching options as resolved against the model's config."""
    model = loaded.model
    p = model.patch(text, patching=patching)
    data = bytes(i - 4 for i in p.ids if i >= 4)
    patch_of = p.patch_ids()
    positions = [{"pos": t, "byte": None if t == 0 else data[t - 1], "label": show_byte(None if t == 0 else data[t - 1]),
                  "entropy": None if p.entropies is None else round(p.entropies[t], 6), "patch": patch_of[t]}
                 for t in range(len(p.ids))]
    patches = [{"start": s, "length": n,
                "text": data[max(s - 1, 0):s - 1 + n].decode("utf-8", errors="replace") if s else "<s>"}
               for s, n in zip(p.starts, p.lengths)]
    return {
        "model": loaded.name, "trained": loaded.trained, **({} if loaded.trained else {"note": RANDOM_NOTE}),
        **asdict(patching.resolve(model.config)),
        "bytes": len(data), "positions": len(p.ids), "patch_count": p.count,
        "mean_patch_length": round(p.mean_length, 4), "next_starts_patch": p.next_starts_patch,
        "lengths": p.lengths, "starts": p.starts, "patches": patches, "per_position": positions,
    }


def _patching(args) -> PatchingParams:
    return PatchingParams(args.mode, args.threshold, args.max_patch_length, args.patch_size)


def _print_human(report: dict, entropies_only: bool) -> None:
    if not report["trained"]:
        print(f"note: {report['note']}", file=sys.stderr)
    print(f"model {report['model']}  mode {report['mode']}  threshold {report['threshold']}")
    for row in report["per_position"]:
        e = row["entropy"]
        bar = "" if e is None else "#" * int(round(e * 8))
        mark = "" if entropies_only or row["pos"] not in report["starts"] else "  <- patch start"
        print(f"{row['pos']:5d} {row['label']:>4} {'' if e is None else f'{e:7.3f}'} {bar}{mark}")
    if not entropies_only:
        print("patches: " + "|".join(p["text"] for p in report["patches"]))
        print(f"{report['bytes']} bytes + BOS -> {report['patch_count']} patches, "
              f"mean {report['mean_patch_length']:.2f} positions per patch")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blt_core", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint directory or Hugging Face repo id (default: $BLT_MODEL, "
                                    "the shipped model, else random blt-tiny)")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default cpu)")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_ in (("demo", "entropies and patches of a sample sentence"),
                        ("entropy", "per-byte next-byte entropies (nats)"),
                        ("patch", "patch boundaries of a text"),
                        ("tokens", "tokens of real BPE vocabularies (GPT-2, GPT-4, GPT-4o) beside the BLT's patches"),
                        ("corpus", "a long text: bits per byte, patch sizes, token counts, most/least predictable "
                                   "passages")):
        p = sub.add_parser(name, help=help_)
        if name != "demo":
            p.add_argument("text", nargs="?", default=None, help="the text, or - for standard input")
            p.add_argument("--file", help="read the text from this file (raw bytes)")
        p.add_argument("--mode", choices=PATCHING_MODES)
        p.add_argument("--threshold", type=float)
        p.add_argument("--max-patch-length", type=int)
        p.add_argument("--patch-size", type=int, help="static patch size")
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "corpus":
            p.add_argument("--passage-bytes", type=int, default=200)
            p.add_argument("--passages", type=int, default=5, help="how many of the most and least predictable")
    gen = sub.add_parser("generate", help="generate text from a prompt (streams to standard output)")
    gen.add_argument("text", nargs="?", default=None, help="the prompt, or - for standard input")
    gen.add_argument("--file", help="read the prompt from this file (raw bytes)")
    gen.add_argument("--max-new-bytes", type=int, default=200)
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--repetition-penalty", type=float, default=1.0)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    gen.add_argument("--mode", choices=PATCHING_MODES)
    gen.add_argument("--threshold", type=float)
    gen.add_argument("--max-patch-length", type=int)
    gen.add_argument("--patch-size", type=int, help="static patch size")
    gen.add_argument("--cuda-graphs", action="store_true", help="replay CUDA graphs (CUDA only)")
    gen.add_argument("--compile", action="store_true", help="torch.compile the step parts")
    gen.add_argument("--speculative", action="store_true",
                     help="greedy only: one CUDA graph per byte, no host round trip (fastest at short patches)")
    gen.add_argument("--decoder-first", action="store_true",
                     help="the decoder beside the entropy model before the boundary is known (fastest at long patches)")
    gen.add_argument("--device-decides", action="store_true",
                     help="with --decoder-first and --cuda-graphs: greedy bytes decided on the GPU (needs the CUDA toolkit)")
    gen.add_argument("--kernels", action="store_true", help="fused Triton kernels for each layer step (CUDA only)")
    gen.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    info = sub.add_parser("info", help="the model's configuration and size")
    info.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    try:
        loaded = load_model(args.model, device=args.device)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.command == "info":
        report = {"model": loaded.name, "trained": loaded.trained, "parameters": loaded.model.num_params(),
                  "config": to_dict(loaded.model.config)}
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    if args.command == "generate":
        return _generate(loaded, args)
    if args.command in ("tokens", "corpus"):
        return _tokens_or_corpus(loaded, args)
    try:
        text = DEMO_TEXT if args.command == "demo" else _text(args)
        if text is None:
            raise ValueError("no text given: pass it as an argument, '-' for standard input, or --file")
        report = patch_report(loaded, text, _patching(args))
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        if args.command == "entropy":
            report = {k: report[k] for k in ("model", "trained", "bytes")} | {
                "entropies": [r["entropy"] for r in report["per_position"]],
                "labels": [r["label"] for r in report["per_position"]]}
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_human(report, entropies_only=args.command == "entropy")
    return 0


def _generate(loaded, args) -> int:
    try:
        prompt = _text(args)
        if prompt is None:
            raise ValueError("no prompt given: pass it as an argument, '-' for standard input, or --file")
        options = DecodeOptions(cuda_graphs=args.cuda_graphs, compile=args.compile, speculative=args.speculative,
                                decoder_first=args.decoder_first, kernels=args.kernels,
                                device_decides=args.device_decides)
        events = loaded.model.stream(
            prompt, patching=_patching(args), options=options, max_new_bytes=args.max_new_bytes,
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            repetition_penalty=args.repetition_penalty, seed=args.seed, stop=args.stop)
        if not loaded.trained:
            print(f"note: {RANDOM_NOTE}", file=sys.stderr)
        for event in events:
            if hasattr(event, "byte") and not args.json:
                sys.stdout.write(event.text)
                sys.stdout.flush()
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = event
    if args.json:
        print(json.dumps({"model": loaded.name, "trained": loaded.trained, "prompt": result.prompt,
                          "text": result.text, "entropies": result.entropies, "patch_starts": result.patch_starts,
                          "stop_reason": result.stop_reason, "global_steps": result.global_steps,
                          "timings": result.timings}, ensure_ascii=False))
    else:
        print(f"\n[{len(result.bytes)} bytes, {result.global_steps} global steps, "
              f"{result.timings['bytes_per_s']} bytes/s, stop: {result.stop_reason}]", file=sys.stderr)
    return 0


def _decoded(args) -> str:
    text = _text(args)
    if text is None:
        raise ValueError("no text given: pass it as an argument, '-' for standard input, or --file")
    return text.decode("utf-8") if isinstance(text, bytes) else text


def _tokens_or_corpus(loaded, args) -> int:
    """`tokens`: each vocabulary's token count and the BLT's patch count of one text; `corpus`:
    blt_core.corpus's report, with a progress bar on standard error."""
    try:
        text = _decoded(args)
        if args.command == "tokens":
            p = loaded.model.patch(text, patching=_patching(args))
            n_bytes = len(text.encode("utf-8"))
            report = {"model": loaded.name, "bytes": n_bytes, "blt_patches": p.count - 1,
                      "blt_bytes_per_patch": n_bytes / max(p.count - 1, 1),
                      "tokenizers": corpus.token_counts(text, n_bytes)}
        else:
            with tqdm(total=len(text.encode("utf-8")), unit="B", unit_scale=True, file=sys.stderr,
                      disable=None) as bar:
                report = corpus.analyse(loaded.model, text, patching=_patching(args), passage_bytes=args.passage_bytes,
                                        passage_count=args.passages, progress=lambda done, _: bar.update(done - bar.n))
            report["model"] = loaded.name
    except (ValueError, TypeError, UnicodeDecodeError, bpe.VocabularyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    if args.command == "corpus":
        print(f"{report['bytes']} bytes: {report['bits_per_byte']:.3f} bits per byte, {report['patches']} patches "
              f"({report['bytes_per_patch']:.2f} bytes per patch)")
    else:
        print(f"{report['bytes']} bytes: {report['blt_patches']} BLT patches "
              f"({report['blt_bytes_per_patch']:.2f} bytes per patch)")
    for row in report["tokenizers"]:
        print(f"  {row['name']:<12} {row['label']:<15} {row['tokens']:>8} tokens  {row['bytes_per_token']:.2f} bytes per token")
    if args.command == "corpus":
        for kind in ("most_predictable", "least_predictable"):
            print(kind.replace("_", " ") + ":")
            for row in report["passages"][kind]:
                print(f"  {row['bits_per_byte']:6.3f} bits/byte at byte {row['start']}: {row['text'][:70]!r}")
    return 0
