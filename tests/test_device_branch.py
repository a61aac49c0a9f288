"""device_branch: where it finds the CUDA toolkit it compiles with, and why it cannot run without a
GPU (the steps then stay host-decided). On a GPU, test_generate.py and test_batching.py check the
bytes of device-decided steps against the eager path."""
import pytest
import torch

from blt_core.generation import DecodeOptions, device_branch


def test_the_toolkit_is_found_under_cuda_home_with_its_device_runtime(tmp_path, monkeypatch):
    lib = tmp_path / "targets" / "x86_64-linux" / "lib"
    lib.mkdir(parents=True)
    (lib / "libnvrtc.so.13").touch()
    (lib / "libnvrtc-builtins.so.13").touch()
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert device_branch._toolkit_lib() != lib                   # NVRTC alone is not enough
    (lib / "libcudadevrt.a").touch()
    assert device_branch._toolkit_lib() == lib
    assert device_branch._nvrtc_path(lib) == lib / "libnvrtc.so.13"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the reason given without a GPU")
def test_without_a_gpu_it_says_why_and_fastest_leaves_it_off():
    device_branch.unavailable.cache_clear()
    assert device_branch.unavailable() == "no CUDA device"
    assert not DecodeOptions.fastest("cpu").device_decides
    with pytest.raises(RuntimeError, match="no CUDA device"):
        device_branch._kernel(torch.device("cuda", 0))
