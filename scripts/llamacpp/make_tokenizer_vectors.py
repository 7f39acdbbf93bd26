#!/usr/bin/python3
"""Record llama.cpp's token ids for every `tokenizer.ggml.pre` value reslens accepts, and for the
gemma4 tokenizer model, as test vectors (tests/unit/tokenizer/pre_aliases_test.cpp).

    /usr/bin/python3 scripts/llamacpp/make_tokenizer_vectors.py --llama-cpp /tmp/llama.cpp \
        [--out tests/data/llamacpp-tokenizer] [--shared ../shared]

Each case takes a vocabulary GGUF of ../shared/tokenizers/ggml-vocab, sets its `tokenizer.ggml.pre`
(or removes it: llama.cpp then uses its "default" list), writes that copy to a temporary file and
tokenizes with llama.cpp (dump_tokens.cpp: no BOS, special-token text kept as text) the vocabulary's
own `.inp` strings (gpt-2's for GPT-NeoX, which ships none) followed by extra.inp here (newline runs,
punctuation, digits, scripts and a seeded random mix, written by this script). It writes
  NAME.out     one line of ids per string
  cases.json   per case: the vocabulary, the pre value (null = absent), the number of strings,
               whether llama.cpp adds BOS by default, and the llama.cpp commit
The test rewrites the same vocabulary the same way in memory and compares every line.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from reslens_ref.gguf import GGUFFile  # noqa: E402
from reslens_ref.gguf_writer import GGUFWriter  # noqa: E402
from reslens_ref.gguf import STRING, Value  # noqa: E402

SEPARATOR = "\n__ggml_vocab_test__\n"

# (name, vocabulary file under tokenizers/ggml-vocab, pre value or None for an absent key). Each pre
# value of src/tokenizer/llamacpp_pre.cpp is run on a vocabulary of its family where one ships
# (GPT-NeoX's for mpt/olmo, cl100k has none: dbrx/smaug-bpe on Llama 3's, whose regex they share).
CASES = [
    ("neox-no-pre", "ggml-vocab-gpt-neox.gguf", None),
    ("gpt2-default", "ggml-vocab-gpt-2.gguf", "default"),
    ("gpt2-gpt-2", "ggml-vocab-gpt-2.gguf", "gpt-2"),
    ("gpt2-phi-2", "ggml-vocab-gpt-2.gguf", "phi-2"),
    ("gpt2-jais", "ggml-vocab-gpt-2.gguf", "jais"),
    ("neox-mpt", "ggml-vocab-gpt-neox.gguf", "mpt"),
    ("neox-olmo", "ggml-vocab-gpt-neox.gguf", "olmo"),
    ("llama-bpe-llama-bpe", "ggml-vocab-llama-bpe.gguf", "llama-bpe"),
    ("llama-bpe-llama3", "ggml-vocab-llama-bpe.gguf", "llama3"),
    ("llama-bpe-llama-v3", "ggml-vocab-llama-bpe.gguf", "llama-v3"),
    ("llama-bpe-falcon3", "ggml-vocab-llama-bpe.gguf", "falcon3"),
    ("llama-bpe-dbrx", "ggml-vocab-llama-bpe.gguf", "dbrx"),
    ("llama-bpe-smaug-bpe", "ggml-vocab-llama-bpe.gguf", "smaug-bpe"),
    ("qwen2-qwen2", "ggml-vocab-qwen2.gguf", "qwen2"),
    ("qwen2-deepseek-r1-qwen", "ggml-vocab-qwen2.gguf", "deepseek-r1-qwen"),
    ("qwen2-stablelm2", "ggml-vocab-qwen2.gguf", "stablelm2"),
    ("falcon-falcon", "ggml-vocab-falcon.gguf", "falcon"),
    ("gemma-4", "ggml-vocab-gemma-4.gguf", "keep"),  # tokenizer model gemma4 as shipped
]


def extra_strings():
    """Strings the shipped vectors leave out: what each split step does at its edges."""
    s = ["\n" * k for k in range(1, 41)]
    s += ["a" + "\n" * k + "b" for k in (2, 3, 5, 8, 17, 31, 32, 33)]
    s += [" \n\n ", "x\n\n\n\n\n\n\n\n\n\ny", "\r\n\r\n", "\n \n", "  \n\t\n"]
    s += [" (", " 12", " 123", "12345", "1234567890", "1,234,567.89", "$100", "a+=b 12345", "x`y",
          "f(x)=y^2", "~/.bashrc", "<a href=\"x\">", "  ...", "!!!???", "hello...world", "C++", "a--b",
          "e.g.", "50%", "#1", "@user", "[1, 2]", "{}", "|x|", "don't", "I'LL", "we'Re", "'s", "''",
          "٣٤٥ ١٢", "½ ¾", "Ⅻ", "١٢٣٤", "«bonjour» — …", "、。「」", "¿qué?", "¡hola!", "\u00a0x", "\u3000x",
          "x\u2003y", "a\u0085b", "\u200bzero", "é vs e\u0301", "ﬁ", "🦙🦙 🦙", "👩‍💻", "日本語のテキスト",
          "한국어", "Ελληνικά", "עברית", "हिन्दी", "\t\tindent", "    code", "tab\there", "   ", "end "]
    rng = random.Random(14)
    alphabet = list("abcXYZ 019'.,;:!?-+=$^`|~<>()[]{}\"\n\t") + ["é", "ß", "ж", "中", "٣", "½", "—",
                                                                     "…", "«", "\u00a0", "🦙", "\u2003"]
    for _ in range(200):
        s.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))))
    return s


def read_strings(path):
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    out, pos = [], 0
    while pos < len(text):
        hit = text.find(SEPARATOR, pos)
        if hit < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:hit])
        pos = hit + len(SEPARATOR)
    return out


def write_strings(path, strings):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(s + SEPARATOR for s in strings))


def build_dumper(llama, work):
    exe = os.path.join(work, "dump_tokens")
    subprocess.run(["g++", "-std=c++17", "-O2", os.path.join(HERE, "dump_tokens.cpp"), "-o", exe,
                    "-I", os.path.join(llama, "include"), "-I", os.path.join(llama, "ggml", "include"),
                    "-L", os.path.join(llama, "build", "bin"), "-lllama", "-lggml", "-lggml-base",
                    "-Wl,-rpath," + os.path.join(llama, "build", "bin")], check=True)
    return exe


def rewrite_pre(src, dst, pre):
    gf = GGUFFile(src)
    w = GGUFWriter(dst)
    for key, v in gf.fields.items():
        if key == "tokenizer.ggml.pre":
            continue
        w.add_value(key, v)
    if pre is not None:
        w.add_value("tokenizer.ggml.pre", Value(STRING, pre))
    w.write()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", required=True)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "llamacpp-tokenizer"))
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    args = ap.parse_args()
    vocab_dir = os.path.join(args.shared, "tokenizers", "ggml-vocab")
    commit = subprocess.run(["git", "-C", args.llama_cpp, "rev-parse", "--short", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    os.makedirs(args.out, exist_ok=True)
    extra = extra_strings()
    write_strings(os.path.join(args.out, "extra.inp"), extra)
    cases = []
    with tempfile.TemporaryDirectory() as work:
        exe = build_dumper(args.llama_cpp, work)
        for name, vocab, pre in CASES:
            src = os.path.join(vocab_dir, vocab)
            own = src + ".inp" if os.path.exists(src + ".inp") else os.path.join(vocab_dir, "ggml-vocab-gpt-2.gguf.inp")
            strings = read_strings(own) + extra
            inp = os.path.join(work, name + ".inp")
            write_strings(inp, strings)
            gguf = src
            if pre != "keep":
                gguf = os.path.join(work, name + ".gguf")
                rewrite_pre(src, gguf, pre)
            ids = subprocess.run([exe, gguf, inp], check=True, capture_output=True, text=True).stdout
            lines = ids.splitlines()
            assert len(lines) == len(strings), (name, len(lines), len(strings))
            with open(os.path.join(args.out, name + ".out"), "w") as f:
                f.write(ids)
            add_bos = subprocess.run([exe, gguf, "--add-bos"], check=True, capture_output=True,
                                     text=True).stdout.strip() == "1"
            cases.append({"name": name, "vocab": "tokenizers/ggml-vocab/" + vocab,
                          "strings": os.path.relpath(own, args.shared), "pre": pre, "n_strings": len(strings),
                          "add_bos": add_bos})
            print(f"{name}: {len(strings)} strings, add_bos {add_bos}")
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"llama_cpp_commit": commit, "extra": "extra.inp", "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
