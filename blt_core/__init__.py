"""blt_core: a clean PyTorch Byte Latent Transformer (Pagnoni et al. 2024, arXiv 2412.09871)
that reads and writes transformers' BltForCausalLM checkpoints."""
from .blt import BLT
from .checkpoint import CheckpointError
from .config import BLTConfig, StackConfig, preset
from .patching import Patches
from .tokenizer import ByteTokenizer

__all__ = ["BLT", "BLTConfig", "StackConfig", "ByteTokenizer", "Patches", "CheckpointError", "preset"]
