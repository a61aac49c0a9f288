"""blt_core: a clean PyTorch Byte Latent Transformer (Pagnoni et al. 2024, arXiv 2412.09871)
that reads and writes transformers' BltForCausalLM checkpoints."""
from .blt import BLT
from .checkpoint import CheckpointError
from .config import BLTConfig, StackConfig, preset
from .generation import ByteEvent, DecodeOptions, GenerationResult, KernelConfig
from .patching import Patches, PatchingParams
from .sampling import SamplingParams
from .tokenizer import ByteTokenizer

__all__ = ["BLT", "BLTConfig", "StackConfig", "ByteTokenizer", "Patches", "PatchingParams", "SamplingParams",
           "DecodeOptions", "KernelConfig", "GenerationResult", "ByteEvent", "CheckpointError", "preset"]
