"""The OpenAPI 3.1 document of the JSON API (served at /api/openapi.json, rendered on /api), with
an example request and response for every endpoint. The examples are real outputs of the shipped
model (models/blt-studio) on CPU, shortened where marked.
"""
from __future__ import annotations

from .reports import patch_stats

TEXT = "Hello, BLT!"
BYTES = [72, 101, 108, 108, 111, 44, 32, 66, 76, 84, 33]
ENTROPIES = [2.5074, 2.6098, 1.775, 2.5613, 2.4647, 0.4063, 3.5867, 2.1983, 2.7014, 3.1421, 1.9176]
BYTE_TABLE = {"bytes": BYTES, "chars": list(TEXT), "char_index": list(range(len(TEXT)))}
LENGTHS, STARTS = [1, 1, 2, 1, 2, 2, 1, 1], [0, 1, 2, 4, 5, 7, 9, 10]


ERROR_TYPES = ["validation", "invalid_json", "bad_request", "not_found", "method_not_allowed", "request_timeout",
               "payload_too_large", "uri_too_long", "unsupported_media_type", "headers_too_large", "overloaded",
               "model_unavailable", "warming_up", "out_of_memory", "png_unavailable", "not_implemented", "internal"]
ERROR_EXAMPLES = {
    "400": ("Body is not UTF-8 JSON", {"error": "request body is not valid JSON: Expecting value: line 1 column 1 "
                                                "(char 0)", "error_type": "invalid_json"}),
    "413": ("Request body or text over its limit", {"error": "text is 20000 bytes of UTF-8; the limit is 16384 "
                                                              "(max_text_bytes)", "error_type": "payload_too_large"}),
    "415": ("Not application/json", {"error": "Content-Type must be application/json, found 'text/plain'",
                                     "error_type": "unsupported_media_type"}),
    "422": ("A field is invalid", {"error": "threshold must be a finite number, found inf",
                                   "error_type": "validation"}),
    "429": ("Every slot is busy (Retry-After: 1)", {"error": "Model is overloaded: all 1 generation slots are "
                                                             "busy; retry shortly", "error_type": "overloaded"}),
    "404": ("No such resource", {"error": "no data file named 'nope.json'", "error_type": "not_found"}),
    "503": ("The model could not be loaded", {"error": "the model is unavailable: models/missing could not be "
                                                       "loaded on cpu: CheckpointError: ...",
                                              "error_type": "model_unavailable"}),
}

PATCH_REQUEST = {"text": TEXT, "mode": "entropy", "threshold": 2.281923294067383, "max_patch_length": None}
PATCH_RESPONSE = {
    "text": TEXT, **BYTE_TABLE, "entropies": ENTROPIES, "model": "models/blt-studio",
    "mode": "entropy", "threshold": 2.281923294067383, "max_patch_length": None, "patch_size": 4,
    "next_starts_patch": False, "patch_lengths": LENGTHS, "patch_starts": STARTS,
    "patch_ids": [0, 1, 2, 2, 3, 4, 4, 5, 5, 6, 7],
    "patches": [{"index": j, "start": s, "length": n, "text": TEXT[s:s + n]}
                for j, (s, n) in enumerate(zip(STARTS, LENGTHS))],
    "stats": patch_stats(LENGTHS),
}
GENERATE_REQUEST = {"prompt": "The patch", "max_new_bytes": 12, "temperature": 0.8, "top_p": 0.95, "seed": 1,
                    "stop": ["\n\n"]}
GENERATE_STATS = {"new_bytes": 12, "seconds": 0.14, "bytes_per_s": 82.8, "global_steps": 3,
                  "global_step_share": 0.25}
GENERATE_RESPONSE = {
    "prompt": "The patch", "text": " that shares", "bytes": [32, 116, 104, 97, 116, 32, 115, 104, 97, 114, 101, 115],
    "entropies": [2.381, 0.7066, 0.8479, 0.0373, 0.1551, 3.1163, 2.3933, 1.2216, 0.8555, 1.2083, 1.6589, 1.179],
    "starts_patch": [False, True, False, False, False, False, True, True, False, False, False, False],
    "stats": GENERATE_STATS, "stop_reason": "max_new_bytes",
}
SSE_EXAMPLE = ('event: byte\ndata: {"i":0,"byte":32,"text":" ","entropy":2.381,"starts_patch":false,'
               '"global_step":false}\n\n'
               'event: byte\ndata: {"i":1,"byte":116,"text":"t","entropy":0.7066,"starts_patch":true,'
               '"global_step":false}\n\n'
               '...\n\n'
               f'event: done\ndata: {{"stats":{{"new_bytes":12,"seconds":0.14,"bytes_per_s":82.8,"global_steps":3,'
               f'"global_step_share":0.25}},"stop_reason":"max_new_bytes"}}\n\n')
MODEL_INFO = {
    "name": "models/blt-studio", "loaded": True, "state": "ready", "error": None, "generations_running": 0,
    "torch_threads": 2,
    "gc": {"frozen_objects": 339640, "collections": {"0": {"count": 304, "longest_ms": 0.9, "total_ms": 41.5},
                                                     "1": {"count": 27, "longest_ms": 2.9, "total_ms": 46.0},
                                                     "2": {"count": 4, "longest_ms": 211.6, "total_ms": 450.2}}},
    "trained": True, "device": "cpu", "dtype": "float32", "params": 12602240, "default_threshold": 2.281923294067383,
    "config": {"patching_mode": "entropy", "patching_threshold": 2.281923294067383, "patch_size": 4,
               "max_patch_length": None, "cross_attn_k": 2, "encoder_pooling": "cross_attention",
               "stacks": {"encoder": {"dim": 128, "layers": 1, "heads": 4, "context": 4096, "sliding_window": None},
                          "...": "global, decoder, entropy_model alike"}},
}
TOKENIZE_TEXT = "Hello, BLT! \U0001F44B"
TOKENIZE_REQUEST = {"text": TOKENIZE_TEXT, "tokenizers": ["r50k_base", "o200k_base"]}
_SPANS = [{"start": 0, "length": 5, "tokens": 1, "text": "Hello"}, {"start": 5, "length": 1, "tokens": 1, "text": ","},
          {"start": 6, "length": 3, "tokens": 1, "text": " BL"}, {"start": 9, "length": 1, "tokens": 1, "text": "T"},
          {"start": 10, "length": 1, "tokens": 1, "text": "!"},
          {"start": 11, "length": 5, "tokens": 2, "text": " \U0001F44B"}]
TOKENIZE_RESPONSE = {
    "text": TOKENIZE_TEXT, "bytes": 16, "tokenizers": [
        {"name": "r50k_base", "label": "GPT-2, GPT-3", "vocab_size": 50256, "tokens": 7,
         "bytes_per_token": 2.2857142857142856, "token_ids": [15496, 11, 9878, 51, 0, 50169, 233],
         "token_starts": [0, 5, 6, 9, 10, 11, 15], "token_lengths": [5, 1, 3, 1, 1, 4, 1], "spans": _SPANS},
        {"name": "o200k_base", "label": "GPT-4o", "vocab_size": 199998, "tokens": 7,
         "bytes_per_token": 2.2857142857142856, "token_ids": [13225, 11, 25997, 51, 0, 61138, 233],
         "token_starts": [0, 5, 6, 9, 10, 11, 15], "token_lengths": [5, 1, 3, 1, 1, 4, 1], "spans": _SPANS}],
    "blt": {"model": "models/blt-studio", "mode": "entropy", "threshold": 2.281923294067383, "max_patch_length": None,
            "patch_size": 4, "patch_lengths": [1, 1, 2, 1, 2, 2, 1, 2, 2, 1, 1],
            "patch_starts": [0, 1, 2, 4, 5, 7, 9, 10, 12, 14, 15],
            "stats": patch_stats([1, 1, 2, 1, 2, 2, 1, 2, 2, 1, 1])},
}
CORPUS_TEXT = "The patch is the unit of compute. " * 8
_TOKEN_COUNTS = [{"name": name, "label": label, "tokens": 65, "bytes_per_token": 4.184615384615385}
                 for name, label in (("r50k_base", "GPT-2, GPT-3"), ("cl100k_base", "GPT-4, GPT-3.5"),
                                     ("o200k_base", "GPT-4o"))]
CORPUS_RESPONSE = {
    "bytes": 272, "characters": 272, "window_bytes": 512,
    "patching": {"mode": "entropy", "threshold": 2.281923294067383, "max_patch_length": None, "patch_size": 4},
    "bits_per_byte": 0.5929938071951978, "patches": 47, "bytes_per_patch": 5.787234042553192,
    "patch_size_histogram": {"1": 1, "2": 8, "3": 2, "4": 12, "6": 9, "9": 12, "13": 3}, "tokenizers": _TOKEN_COUNTS,
    "passages": {"passage_bytes": 100, "ranked": 3,
                 "most_predictable": [{"start": 200, "length": 72, "bits_per_byte": 0.2568969021736696,
                                       "text": CORPUS_TEXT[200:]}],
                 "least_predictable": [{"start": 0, "length": 100, "bits_per_byte": 1.0749824417419678,
                                        "text": CORPUS_TEXT[:100]}]},
}
CORPUS_PARAMETERS = [
    {"name": "passages", "in": "query", "required": False, "example": 1,
     "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
     "description": "how many most and least predictable passages"},
    {"name": "passage_bytes", "in": "query", "required": False, "example": 100,
     "schema": {"type": "integer", "minimum": 16, "maximum": 4096, "default": 200},
     "description": "bytes per passage (cut at the next character boundary)"},
    *({"name": name, "in": "query", "required": False, "schema": {"type": kind},
       "description": "patching, as in /api/patch (unset: the model's)"}
      for name, kind in (("mode", "string"), ("threshold", "number"), ("max_patch_length", "integer"),
                         ("patch_size", "integer")))]
CORPUS_DESCRIPTION = ("The body is the text file itself (Content-Type: text/plain, UTF-8, at most max_corpus_bytes "
                      "of /api/models: else 413; not UTF-8, or control characters but tab, newline and carriage "
                      "return: 422). The model reads it in windows of window_bytes, each after its own BOS (as "
                      "blt_core.eval does); bits_per_byte is the mean cross-entropy of every byte, in bits; "
                      "patch_size_histogram counts the patches it used (each window starts one). tokenizers: the "
                      "text's tokens under real BPE vocabularies (as /api/tokenize). passages: runs of about "
                      "passage_bytes bytes ranked by their mean bits per byte (ranked: how many; a tail of less "
                      "than half a passage is not ranked). corpus_slots analyses run at once (one more: 429), each "
                      "holding an analysis slot; on 2 CPU cores the earlier 7 M-parameter default model read about 9 kB/s.")
DETAIL_REQUEST = {"text": TEXT, "start": 4, "length": 2, "top_k": 3}
DETAIL_RESPONSE = {"start": 4, "stop": 6, "top_k": 3, "positions": [
    {"i": 4, "byte": 111, "char": "o", "entropy": 2.4647,
     "next": [{"byte": 119, "p": 0.2532}, {"byte": 44, "p": 0.2479}, {"byte": 32, "p": 0.1329}]},
    {"i": 5, "byte": 44, "char": ",", "entropy": 0.4063,
     "next": [{"byte": 32, "p": 0.9143}, {"byte": 10, "p": 0.0607}, {"byte": 34, "p": 0.0134}]}],
    "model": "models/blt-studio"}
FIELDS_NOTE = ("Optional fields: a list of the response's field names to send only those (e.g. [\"entropies\"]: "
               "a page that has the text needs no per-byte copies of it; in full, 16 kB of text gives ~0.5 MB of "
               "JSON from /api/entropy, ~1 MB from /api/patch).")
LANGUAGE_ROW = {"language": "english_prose", "script": "Latin", "corpus": "broad", "bpb": 1.5109,
                "mean_patch_bytes": 5.07, "bytes": 100352, "file_bytes": 496890, "sampling": "spread",
                "model": "models/blt-studio"}


def _json(example) -> dict:
    return {"application/json": {"example": example}}


def _op(summary: str, ok, *, request=None, errors=(), description=None, parameters=None, ok_type="application/json",
        tag="model", request_type="application/json") -> dict:
    """One operation: summary, example request body, example 200 response and error responses."""
    op = {"summary": summary, "tags": [tag],
          "responses": {"200": {"description": "OK", "content": {ok_type: {"example": ok}}}}}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if request is not None:
        op["requestBody"] = {"required": True, "content": {request_type: {"example": request}}}
    for status in errors:
        text, example = ERROR_EXAMPLES[status]
        op["responses"][status] = {"description": text,
                                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"},
                                                                    "example": example}}}
    return op


def _file_op(kind: str, example_name: str, media: str) -> dict:
    return {"get": _op(f"One {kind} file from plot_data/ or the export folder", f"(the file, {media})",
                       ok_type=media, tag="files", errors=("404",),
                       description="Only allow-listed names (letters, digits, '.', '_', '-') and extensions whose "
                                   "resolved path stays inside the folder (symlinks out are refused); anything "
                                   "else is a JSON 404. plot_data/ holds JSON data; HTML and PNG files exist once "
                                   "`python -m app.export` has written them (GET /api/visualizations lists what "
                                   "is there).",
                       parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                                    "example": example_name}])}


MODEL_ERRORS = ("400", "413", "415", "422", "429", "503")


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "BLT Studio API", "version": "1.0",
                 "description": "Entropies, patches and generation of a Byte Latent Transformer, and the data "
                                "behind BLT Studio's figures. Every error is JSON {error, error_type}. Per-byte "
                                "arrays are over the text's UTF-8 bytes: entropies[i] is the entropy (nats) of "
                                "the prediction made after byte i; patches leave out blt_core's BOS patch."},
        "paths": {
            "/healthz": {"get": _op(
                "Liveness and model state; never waits on the model", tag="service",
                ok={"status": "ok", "model": MODEL_INFO},
                description="status: ok, loading, not_loaded (loads on first use) or degraded (the load failed: "
                            "model.error says why). model.gc: the objects the worker froze for Python's garbage "
                            "collector once the model was loaded and warm, and per generation the collections "
                            "since loading with their longest and total pause in ms.")},
            "/api/models": {"get": _op(
                "The loaded model, patching modes, defaults and request limits",
                description="max_text_bytes caps every text; a generation prompt is also bounded by the model: "
                            "BOS + prompt + max_new_bytes must fit context_bytes, so a prompt may have "
                            "min(max_text_bytes, context_bytes - 1 - max_new_bytes) bytes (max_prompt_bytes_rule); "
                            "max_prompt_bytes is that at default_new_bytes. The prompt's patches must fit the "
                            "global model's context_patches (a 422 names it; static patching counts the new bytes "
                            "too), and a generation whose patches fill it stops with stop_reason 'context'. "
                            "context_bytes, context_patches and max_prompt_bytes are null while no model is loaded. "
                            "analysis_slots (entropy, patch and compare requests at once; one more waits "
                            "analysis_wait_s, then 429) is analysis_slots_setting when set, else as many "
                            "worst-case analyses (analysis_peak_mb: max_text_bytes of text, app/memory.py) as fit "
                            "in analysis_memory_mb (analysis_slots_rule); null with analysis_peak_mb while no "
                            "model is loaded. Built figure documents are cached within figure_cache_mb. The entropy model's "
                            "state at chunk boundaries of recent texts is kept within entropy_memo_mb, so a text that "
                            "begins like one of them is computed only from its first change (the same entropies).",
                ok={"model": MODEL_INFO, "modes": ["entropy", "entropy_monotonic", "static", "space"],
                    "tokenizers": [{"name": "r50k_base", "label": "GPT-2, GPT-3", "vocab_size": 50256},
                                   {"name": "cl100k_base", "label": "GPT-4, GPT-3.5", "vocab_size": 100256},
                                   {"name": "o200k_base", "label": "GPT-4o", "vocab_size": 199998}],
                    "defaults": {"mode": "entropy", "threshold": 2.281923294067383, "max_patch_length": None,
                                 "patch_size": 4},
                    "limits": {"max_request_bytes": 262144, "max_text_bytes": 16384, "context_bytes": 4096,
                               "context_patches": 2048, "max_prompt_bytes": 3895,
                               "max_prompt_bytes_rule": "min(max_text_bytes, context_bytes - 1 - max_new_bytes)",
                               "default_new_bytes": 200, "max_new_bytes": 1024,
                               "threshold": [-6.0, 6.0], "max_patch_length": [1, 256], "patch_size": [1, 256],
                               "temperature": [0, 10.0], "top_k": [0, 260], "top_p": [0, 1],
                               "repetition_penalty": [0.1, 10.0], "detail_bytes": [1, 64], "detail_top_k": [1, 20],
                               "max_stop_strings": 4, "max_stop_bytes": 64, "generation_slots": 1,
                               "analysis_slots": 4, "analysis_slots_rule": "analysis_slots_setting if set, else "
                               "max(1, floor(analysis_memory_mb / analysis_peak_mb))", "analysis_slots_setting": None,
                               "analysis_memory_mb": 96, "analysis_peak_mb": 23.5, "analysis_wait_s": 1.0,
                               "figure_cache_mb": 16, "entropy_memo_mb": 32}})},
            "/api/entropy": {"post": _op(
                "Next-byte entropies (nats) of a text", request={"text": TEXT}, errors=MODEL_ERRORS,
                ok={"text": TEXT, **BYTE_TABLE, "entropies": ENTROPIES, "model": "models/blt-studio"},
                description="chars[i] is the character byte i belongs to (an escape such as \\n for "
                            "non-printables); char_index[i] its index in the text (code points). " + FIELDS_NOTE)},
            "/api/entropy/detail": {"post": _op(
                "Per byte of a span: the entropy after it and the entropy model's most likely next bytes",
                request=DETAIL_REQUEST, ok=DETAIL_RESPONSE, errors=MODEL_ERRORS,
                description="start: the first byte (UTF-8 offset, less than the text's length); length: bytes "
                            "from there (default 1, at most detail_bytes of /api/models, cut at the text's end); "
                            "top_k: candidates per byte (default 5, at most detail_top_k). next lists the top_k "
                            "most likely next tokens of the prediction made after the byte, most likely first: "
                            "{byte, p}, or {token, p} for a special token (eos). The entropies are those of "
                            "/api/entropy (one pass over the whole text).")},
            "/api/patch": {"post": _op(
                "Entropies and patches of a text under one patching mode", request=PATCH_REQUEST,
                ok=PATCH_RESPONSE, errors=MODEL_ERRORS,
                description="Optional: mode (entropy, entropy_monotonic, static, space), threshold (nats), "
                            "max_patch_length (null: none), patch_size (static); unset ones come from the model. "
                            "patch_lengths equal blt_core's model.patch(text).lengths without the BOS patch. "
                            + FIELDS_NOTE)},
            "/api/compare": {"post": _op(
                "One text under every patching mode (one entropy-model pass)",
                request={"text": TEXT, "threshold": 2.281923294067383}, errors=MODEL_ERRORS,
                ok={"text": TEXT, "modes": {
                    "entropy": {"patch_lengths": LENGTHS, "patch_starts": STARTS, "stats": patch_stats(LENGTHS)},
                    "entropy_monotonic": {"patch_lengths": [1, 6, 4], "patch_starts": [0, 1, 7],
                                          "stats": patch_stats([1, 6, 4])},
                    "static": {"patch_lengths": [4, 4, 3], "patch_starts": [0, 4, 8], "stats": patch_stats([4, 4, 3])},
                    "space": {"patch_lengths": [6, 1, 4], "patch_starts": [0, 6, 7],
                              "stats": patch_stats([6, 1, 4])}}})},
            "/api/tokenize": {"post": _op(
                "A text's tokens under real BPE vocabularies, beside the BLT's patches", request=TOKENIZE_REQUEST,
                ok=TOKENIZE_RESPONSE, errors=MODEL_ERRORS, tag="tokens",
                description="tokenizers (default all): r50k_base (GPT-2, GPT-3), cl100k_base (GPT-4, GPT-3.5), "
                            "o200k_base (GPT-4o): tiktoken's vocabularies and rules (encode_ordinary: special-token "
                            "text is plain text), shipped with the server. token_starts and token_lengths are byte "
                            "spans in the text's UTF-8 bytes (a token may end inside a character); spans are the "
                            "same tokens grouped so each span is whole characters (tokens: how many it holds). "
                            "blt (default true; false needs no model): the model's patches of the same text under "
                            "the patching options of /api/patch.")},
            "/api/corpus": {"post": _op(
                "A text file as a whole: bits per byte, patch sizes, BPE token counts, most and least "
                "predictable passages", request=CORPUS_TEXT, request_type="text/plain", ok=CORPUS_RESPONSE,
                errors=MODEL_ERRORS, tag="corpus", description=CORPUS_DESCRIPTION, parameters=CORPUS_PARAMETERS)},
            "/api/corpus/stream": {"post": _op(
                "The same analysis with progress, as server-sent events", request=CORPUS_TEXT,
                request_type="text/plain", ok_type="text/event-stream", errors=MODEL_ERRORS, tag="corpus",
                ok='event: progress\ndata: {"bytes_done":272,"bytes_total":272}\n\n'
                   'event: done\ndata: {"bytes":272,"characters":272,"window_bytes":512,...}\n\n',
                parameters=CORPUS_PARAMETERS,
                description="event: progress, data {bytes_done, bytes_total} after each window; event: done, data: "
                            "the report of /api/corpus; event: error, data {error, error_type}.")},
            "/api/generate": {"post": _op(
                "Generate bytes from a prompt (one response when done)", request=GENERATE_REQUEST,
                ok=GENERATE_RESPONSE, errors=MODEL_ERRORS,
                description="Sampling: max_new_bytes, temperature (0: greedy), top_k (0: off), top_p in (0, 1], "
                            "repetition_penalty, seed, stop (strings, cut from the text), stop_at_eos (default true; "
                            "false: never end at the model's end-of-sequence byte, so exactly max_new_bytes "
                            "unless a stop string or the context ends it); patching as in /api/patch. "
                            "Concurrent generations share the model's batch (continuous batching) up to its "
                            "generation slots (/api/models); beyond them another gets 429 at once. The prompt "
                            "is bounded by the model's contexts (/api/models: max_prompt_bytes_rule, "
                            "context_patches); stop_reason is max_new_bytes, eos, stop, or context (the global "
                            "model's context of patches is full).")},
            "/api/generate/stream": {"post": _op(
                "Generate with server-sent events: byte events, then done (or error)", request=GENERATE_REQUEST,
                ok=SSE_EXAMPLE, ok_type="text/event-stream", errors=MODEL_ERRORS,
                description="event: byte, data {i, byte, text (UTF-8-safe delta, may be empty), entropy, "
                            "starts_patch, global_step}; event: done, data {stats, stop_reason}; event: error, "
                            "data {error, error_type}. Closing the connection stops generation at once.")},
            "/api/languages": {"get": _op(
                "Bytes per patch and bits per byte by language (plot_data/languages.json)", tag="data",
                ok={"rows": [LANGUAGE_ROW]}, errors=("404",))},
            "/api/languages.csv": {"get": _op(
                "The same rows as CSV", tag="data", ok_type="text/csv", errors=("404",),
                ok="language,script,corpus,bpb,mean_patch_bytes,bytes,file_bytes,sampling,model\n"
                   "english_prose,Latin,broad,1.5109,5.07,100352,496890,spread,models/blt-studio\n")},
            "/api/figures": {"get": _op(
                "The figures whose data exists in plot_data/", tag="figures",
                ok=[{"name": "threshold_sweep", "title": "Threshold sweep", "formats": ["json", "html", "png"],
                     "source_files": ["threshold_sweep_cpu_tiny.json"]}])},
            "/api/figures/{name}": {"get": _op(
                "One figure as Plotly JSON, an HTML page (loading this server's plotly.js), or PNG", tag="figures",
                errors=("404", "422"),
                ok={"data": [{"type": "scatter", "x": [2.0, 3.0], "y": [1.83, 1.83], "name": "blt-tiny entropy"}],
                    "layout": {"title": {"text": "Threshold sweep: quality against patch size"}}},
                description="PNG needs Chromium on the server: 503 png_unavailable says so when it is missing.",
                parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                             "example": "threshold_sweep"},
                            {"name": "format", "in": "query", "required": False,
                             "schema": {"type": "string", "enum": ["json", "html", "png"], "default": "json"}}])},
            "/api/visualizations": {"get": _op(
                "Every stored file: plot_data/ and the export folder", tag="files",
                ok={"files": [{"name": "languages.json", "kind": "data", "folder": "plot_data",
                               "url": "/data/languages.json", "bytes": 5123},
                              {"name": "languages.html", "kind": "html", "folder": "exports",
                               "url": "/visualizations/languages.html", "bytes": 4712345}]})},
            "/visualizations/{name}": _file_op("HTML", "languages.html", "text/html"),
            "/images/{name}": _file_op("image (.png, .svg, .jpg)", "languages.png", "image/png"),
            "/data/{name}": _file_op("data (.json, .csv, .jsonl)", "languages.json", "application/json"),
            "/api/openapi.json": {"get": _op("This document", tag="service",
                                             ok={"openapi": "3.1.0", "info": {"title": "BLT Studio API"},
                                                 "paths": {"...": "..."}})},
        },
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error", "error_type"],
            "properties": {"error": {"type": "string", "description": "what is wrong, naming the field"},
                           "error_type": {"type": "string", "enum": ERROR_TYPES}}}}},
    }
