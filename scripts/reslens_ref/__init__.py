"""reslens_ref: an independent float64 NumPy reference for reslens.

Readers (GGUF, llama2.c, Hugging Face safetensors), writers (GGUF, llama2.c, Hugging Face) and a
float64 forward pass that records TransformerLens-named hooks. Written from the math and the file
format descriptions, not from the C++ sources, so that the two can check each other.

Every loader returns a `Model` (see model.py): a config plus a lazy getter for canonical tensors in
a single layout (PyTorch Linear [out, in] matrices, Q/K rows in Hugging Face rotate_half order).
"""

from .forward import forward
from .model import Config, Model, load_model

__all__ = ["Config", "Model", "forward", "load_model"]
