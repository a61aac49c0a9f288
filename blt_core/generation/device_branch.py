"""A decoder-first byte decided on the GPU: CUDA graph conditional nodes.

A greedy decoder-first byte is three captured graphs: the body (argmax, entropy model, encoder,
boundary decision, the decoder's guess), the patch part (global step, commit, the decoder again)
where a patch completed, and the advance. Host-decided, the host reads the boundary flag after
the body and then queues what follows, so on every byte the GPU waits for the host's turnaround
(blt-1b on an H100 at 4-4.6 bytes a patch: 5-8 % of the library's rate, more of the server's;
bench/README.md). Here one parent graph runs

    body -> set_condition (one thread: flag[0] & 1) -> IF {patch part} -> advance

so the host queues bytes back to back and reads them behind, as it does speculative bytes.

The IF node's condition is set on the device by `cudaGraphSetConditional`, a function of CUDA's
device runtime (libcudadevrt.a, CUDA 12.4+) that the GPU machine's torch 2.11 does not expose
(2.13 has `CUDAGraph.begin_capture_to_if_node`, which captures an IF body). So the
one-thread kernel is compiled with NVRTC and linked with the toolkit's device runtime by the
driver's linker, and the parent graph is built with the driver API over the cudaGraph_t of the
three torch graphs (`CUDAGraph(keep_graph=True)`), which own the memory their kernels use.
`unavailable()` says why this cannot run here (no GPU, no CUDA toolkit found, an older driver or
torch); the steps then stay host-decided.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading
from pathlib import Path

import torch

_void = ctypes.c_void_p
_SOURCE = b"""
typedef unsigned long long cudaGraphConditionalHandle;
extern "C" __device__ void cudaGraphSetConditional(cudaGraphConditionalHandle handle, unsigned int value);
extern "C" __global__ void set_condition(cudaGraphConditionalHandle handle, const int* flag) {
    cudaGraphSetConditional(handle, (unsigned int)(flag[0] & 1));
}
"""
_CONDITIONAL_NODE, _IF = 13, 0              # CU_GRAPH_NODE_TYPE_CONDITIONAL, CU_GRAPH_COND_TYPE_IF
_JIT_PTX, _JIT_LIBRARY = 1, 4               # CUjitInputType
_LOCK = threading.Lock()
_KERNELS: dict[int, _void] = {}             # device index -> set_condition, loaded in its context


class _KernelParams(ctypes.Structure):      # CUDA_KERNEL_NODE_PARAMS_v2
    _fields_ = [("func", _void), ("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("shared_bytes", ctypes.c_uint), ("params", ctypes.POINTER(_void)),
                ("extra", ctypes.POINTER(_void)), ("kern", _void), ("ctx", _void)]


class _ConditionalParams(ctypes.Structure):  # CUDA_CONDITIONAL_NODE_PARAMS
    _fields_ = [("handle", ctypes.c_uint64), ("type", ctypes.c_int), ("size", ctypes.c_uint),
                ("graphs_out", ctypes.POINTER(_void)), ("ctx", _void)]


class _NodeParams(ctypes.Structure):         # CUgraphNodeParams: type, a 232-byte union, 256 in all
    _fields_ = [("type", ctypes.c_int), ("reserved0", ctypes.c_int * 3), ("conditional", _ConditionalParams),
                ("rest", ctypes.c_byte * (232 - ctypes.sizeof(_ConditionalParams))), ("reserved2", ctypes.c_int64)]


def _toolkit_lib() -> Path | None:
    """The CUDA toolkit's library folder holding NVRTC and the device runtime, if any."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda",
             *sorted(glob.glob("/usr/local/cuda-*"), reverse=True)]
    for root in filter(None, roots):
        for sub in ("targets/x86_64-linux/lib", "targets/sbsa-linux/lib", "lib64", "lib"):
            folder = Path(root, sub)
            if (folder / "libcudadevrt.a").exists() and _nvrtc_path(folder) is not None:
                return folder
    return None


def _nvrtc_path(folder: Path) -> Path | None:
    names = [folder / "libnvrtc.so"] + sorted(folder.glob("libnvrtc.so.[0-9]*"))
    return next((p for p in names if p.exists()), None)


@functools.cache
def _driver() -> ctypes.CDLL:
    return ctypes.CDLL("libcuda.so.1")


@functools.cache
def unavailable() -> str | None:
    """Why device-decided steps cannot run in this process (None: they can)."""
    if not torch.cuda.is_available() or torch.version.cuda is None:
        return "no CUDA device"
    try:
        torch.cuda.CUDAGraph(keep_graph=True)
    except TypeError:
        return f"torch {torch.__version__} cannot keep a captured graph (CUDAGraph(keep_graph=True))"
    try:
        cu = _driver()
    except OSError as err:
        return f"no CUDA driver library: {err}"
    version = ctypes.c_int()
    cu.cuDriverGetVersion(ctypes.byref(version))
    if version.value < 12040 or not hasattr(cu, "cuGraphConditionalHandleCreate"):
        return f"CUDA driver {version.value} lacks conditional graph nodes (12.4+)"
    if _toolkit_lib() is None:
        return "no CUDA toolkit with NVRTC and the device runtime (libcudadevrt.a) found: set CUDA_HOME"
    return None


def _check(result: int, what: str) -> None:
    if result != 0:
        name = ctypes.c_char_p()
        _driver().cuGetErrorString(result, ctypes.byref(name))
        raise RuntimeError(f"{what} failed: CUDA error {result} ({(name.value or b'?').decode()})")


def _compile(arch: str) -> bytes:
    """set_condition as PTX for `arch` (e.g. compute_90), relocatable (it calls the device runtime)."""
    nvrtc = ctypes.CDLL(str(_nvrtc_path(_toolkit_lib())))
    program = _void()
    if nvrtc.nvrtcCreateProgram(ctypes.byref(program), _SOURCE, b"set_condition.cu", 0, None, None):
        raise RuntimeError("nvrtcCreateProgram failed")
    try:
        options = (ctypes.c_char_p * 2)(f"--gpu-architecture={arch}".encode(), b"--relocatable-device-code=true")
        failed = nvrtc.nvrtcCompileProgram(program, 2, options)
        size = ctypes.c_size_t()
        if failed:
            nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            nvrtc.nvrtcGetProgramLog(program, log)
            raise RuntimeError(f"NVRTC could not compile set_condition: {log.value.decode()}")
        nvrtc.nvrtcGetPTXSize(program, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        nvrtc.nvrtcGetPTX(program, ptx)
        return ptx.raw
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))


def _kernel(device: torch.device) -> _void:
    """set_condition linked with the device runtime and loaded (once per device)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    with _LOCK:
        if index in _KERNELS:
            return _KERNELS[index]
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(f"device-decided steps are unavailable: {reason}")
        major, minor = torch.cuda.get_device_capability(index)
        ptx = _compile(f"compute_{major}{minor}")
        with torch.cuda.device(index):
            _KERNELS[index] = _link(ptx)
        return _KERNELS[index]


def _link(ptx: bytes) -> _void:
    """PTX linked with the device runtime into the current device's context: set_condition."""
    cu, state = _driver(), _void()
    torch.zeros(1, device="cuda")                       # torch's context, current on this thread
    _check(cu.cuLinkCreate_v2(0, None, None, ctypes.byref(state)), "cuLinkCreate")
    try:
        _check(cu.cuLinkAddData_v2(state, _JIT_PTX, ptx, ctypes.c_size_t(len(ptx)), b"set_condition.ptx",
                                   0, None, None), "cuLinkAddData (set_condition)")
        runtime = str(_toolkit_lib() / "libcudadevrt.a").encode()
        _check(cu.cuLinkAddFile_v2(state, _JIT_LIBRARY, runtime, 0, None, None), "cuLinkAddFile (libcudadevrt.a)")
        cubin, size = _void(), ctypes.c_size_t()
        _check(cu.cuLinkComplete(state, ctypes.byref(cubin), ctypes.byref(size)), "cuLinkComplete")
        module, function = _void(), _void()
        _check(cu.cuModuleLoadData(ctypes.byref(module), cubin), "cuModuleLoadData")
        _check(cu.cuModuleGetFunction(ctypes.byref(function), module, b"set_condition"), "cuModuleGetFunction")
    finally:
        cu.cuLinkDestroy(state)
    return function


class BranchGraph:
    """body -> set_condition(flag) -> IF {patch} -> advance as one instantiated graph, built from
    three torch graphs captured with keep_graph=True and the (1,) int32 flag whose bit 0 the body
    sets where the patch part must run. `launch()` queues it on the current stream."""

    def __init__(self, body: torch.cuda.CUDAGraph, patch: torch.cuda.CUDAGraph, advance: torch.cuda.CUDAGraph,
                 flag: torch.Tensor):
        self._graph, self._exec = _void(), _void()
        self._owners = (body, patch, advance, flag)         # their memory is what the kernels use
        self.device = flag.device
        with torch.cuda.device(self.device):
            self._build(_kernel(self.device), body, patch, advance, flag)

    def _build(self, function: _void, body, patch, advance, flag: torch.Tensor) -> None:
        cu = _driver()
        ctx = _void()
        _check(cu.cuCtxGetCurrent(ctypes.byref(ctx)), "cuCtxGetCurrent")
        _check(cu.cuGraphCreate(ctypes.byref(self._graph), 0), "cuGraphCreate")
        first = self._child(self._graph, [], body)
        handle = ctypes.c_uint64()
        _check(cu.cuGraphConditionalHandleCreate(ctypes.byref(handle), self._graph, ctx, 0, 0),
               "cuGraphConditionalHandleCreate")
        self._args = (ctypes.c_uint64(handle.value), ctypes.c_uint64(flag.data_ptr()))
        pointers = (_void * 2)(*(ctypes.cast(ctypes.byref(a), _void) for a in self._args))
        launch = _KernelParams(function, (1, 1, 1), (1, 1, 1), 0, pointers, None, None, None)
        setter = _void()
        _check(cu.cuGraphAddKernelNode_v2(ctypes.byref(setter), self._graph, (_void * 1)(first), ctypes.c_size_t(1),
                                          ctypes.byref(launch)), "cuGraphAddKernelNode (set_condition)")
        branch_params = _NodeParams(type=_CONDITIONAL_NODE)
        branch_params.conditional = _ConditionalParams(handle.value, _IF, 1, None, ctx)
        branch = _void()
        _check(cu.cuGraphAddNode(ctypes.byref(branch), self._graph, (_void * 1)(setter), ctypes.c_size_t(1),
                                 ctypes.byref(branch_params)), "cuGraphAddNode (IF)")
        self._child(_void(branch_params.conditional.graphs_out[0]), [], patch)
        self._child(self._graph, [branch], advance)
        _check(cu.cuGraphInstantiateWithFlags(ctypes.byref(self._exec), self._graph, ctypes.c_ulonglong(0)),
               "cuGraphInstantiate")

    @staticmethod
    def _child(graph: _void, after: list, child: torch.cuda.CUDAGraph) -> _void:
        node = _void()
        deps = (_void * max(len(after), 1))(*after)
        _check(_driver().cuGraphAddChildGraphNode(ctypes.byref(node), graph, deps if after else None,
                                                  ctypes.c_size_t(len(after)), _void(child.raw_cuda_graph())),
               "cuGraphAddChildGraphNode")
        return node

    def launch(self) -> None:
        """Queue the byte on the current stream of its device."""
        stream = torch.cuda.current_stream(self.device).cuda_stream
        _check(_driver().cuGraphLaunch(self._exec, _void(stream)), "cuGraphLaunch")

    def __del__(self):
        try:
            if self._exec:
                _driver().cuGraphExecDestroy(self._exec)
            if self._graph:
                _driver().cuGraphDestroy(self._graph)
        except Exception:               # interpreter shutdown: the driver may be gone already
            pass
