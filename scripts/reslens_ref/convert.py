"""Conversion of any readable model to a GGUF file of one type: F32, F16, BF16, Q8_0, Q4_0, Q4_1,
Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K or Q6_K.

GGUF sources are converted tensor by tensor: names, order and every metadata key are kept, only
`general.file_type` and the tensor types change. llama2.c and Hugging Face sources go through the
canonical model (gguf_model.write), which permutes Q/K rows back to llama.cpp's layout and writes
the hyper-parameter keys; the tokenizer comes from the llama2.c tokenizer file or, for any
source, from another GGUF's tokenizer.* keys.

Type rules (gguf_model.tensor_type): 1-D tensors (norms, biases) and the GPT-2 position embedding
stay F32, as llama.cpp's converters keep them. A 2-D tensor whose rows do not fill whole blocks
falls back: K types (blocks of 256) to Q8_0 when its rows are a multiple of 32, else to F16;
Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 (blocks of 32) to F16. general.file_type is llama_ftype of the wanted
type (the _M value for Q3_K/Q4_K/Q5_K) whatever the fallbacks.
"""

import numpy as np

from . import ggml_types, gguf_model, llama2c
from .gguf import ARRAY, FLOAT32, INT32, STRING, UINT32, GGUFFile, Value
from .gguf_writer import GGUFWriter
from .model import load_model

# llama.cpp token types.
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_BYTE = 1, 2, 3, 6


def llama2c_tokenizer_fields(path, vocab, unk=0, bos=1, eos=2):
    """tokenizer.* metadata for a llama2.c tokenizer file, as llama.cpp's llama2.c converter
    builds it: SentencePiece pieces with the space shown as U+2581, the BOS/EOS pieces without
    the newlines llama2.c's exporter wrapped them in, and token types derived from the pieces."""
    _, tokens = llama2c.read_tokenizer(path, vocab)
    pieces, scores, types = [], [], []
    for i, (raw, score) in enumerate(tokens):
        text = raw.decode("utf-8", "surrogateescape")
        if i in (bos, eos):
            text = text.strip()
        if i == unk:
            kind = TOKEN_UNKNOWN
        elif i in (bos, eos):
            kind = TOKEN_CONTROL
        elif len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
            kind = TOKEN_BYTE
        else:
            kind = TOKEN_NORMAL
        pieces.append(text.replace(" ", "\u2581"))
        scores.append(score)
        types.append(kind)
    return {
        "tokenizer.ggml.model": Value(STRING, "llama"),
        "tokenizer.ggml.tokens": Value(ARRAY, pieces, STRING),
        "tokenizer.ggml.scores": Value(ARRAY, np.asarray(scores, dtype=np.float32), FLOAT32),
        "tokenizer.ggml.token_type": Value(ARRAY, np.asarray(types, dtype=np.int32), INT32),
        "tokenizer.ggml.unknown_token_id": Value(UINT32, unk),
        "tokenizer.ggml.bos_token_id": Value(UINT32, bos),
        "tokenizer.ggml.eos_token_id": Value(UINT32, eos),
    }


def convert_gguf(src, dst, ftype, tokenizer=None):
    """GGUF -> GGUF, tensor by tensor. tokenizer: {key: Value} replacing the tokenizer.* keys."""
    gf = GGUFFile(src)
    w = GGUFWriter(dst, alignment=gf.alignment)
    file_type = Value(UINT32, ggml_types.FILE_TYPE[ftype])
    for key, v in gf.fields.items():
        if key == "general.alignment":
            continue  # the writer adds it when it is not the default
        if tokenizer is not None and key.startswith("tokenizer."):
            continue
        w.add_value(key, file_type if key == "general.file_type" else v)
    if "general.file_type" not in gf.fields:
        w.add_value("general.file_type", file_type)
    for key, v in (tokenizer or {}).items():
        w.add_value(key, v)
    for name, ti in gf.tensors.items():
        w.add_tensor(name, ti.shape, gguf_model.tensor_type(name, ti.shape, ftype),
                     lambda name=name: gf.tensor(name))
    w.write()


def convert(src, dst, ftype, tokenizer=None, tokenizer_from=None, name=None):
    """Convert model `src` to GGUF `dst` whose 2-D weights have ggml type `ftype`.

    tokenizer: llama2.c tokenizer file (default: the one found beside a llama2.c checkpoint);
    tokenizer_from: a GGUF whose tokenizer.* keys to use (any source)."""
    fields = gguf_model.tokenizer_fields(tokenizer_from) if tokenizer_from else None
    model = load_model(src, tokenizer=tokenizer)
    if model.format == "gguf":
        convert_gguf(src, dst, ftype, fields)
        return
    if fields is None and model.format == "llama2c" and model.extra.get("tokenizer"):
        fields = llama2c_tokenizer_fields(model.extra["tokenizer"], model.config.vocab)
    gguf_model.write(model, dst, ftype, tokenizer=fields, name=name)
