"""Reads the printed notebook outputs (the gold data) from the appendix of shared/paper/spec.md.

The appendix is generated mechanically from the notebooks, one "#### Cell N" section per cell,
each with one ```text block; the parsers below turn the prints the attribution tests use into
Python values. Nothing is transcribed by hand.
"""

import ast
import re

NOTEBOOKS = {"gpt2": "### GPT2-large notebook", "llama": "### Llama-7B notebook"}


def cells(spec_text, which):
    """{cell number: printed text} of one notebook."""
    start = spec_text.index(NOTEBOOKS[which])
    ends = [spec_text.find(h, start + 1) for h in NOTEBOOKS.values()]
    ends = [e for e in ends if e > start]
    body = spec_text[start:min(ends) if ends else len(spec_text)]
    out = {}
    for m in re.finditer(r"#### Cell (\d+)\n(.*?)(?=\n#### Cell |\Z)", body, re.S):
        block = re.search(r"```text\n(.*?)```", m.group(2), re.S)
        out[int(m.group(1))] = block.group(1) if block else ""
    return out


def _literal_after(line, label):
    return ast.literal_eval(line.split(label, 1)[1].strip())


def top10_real(c):
    """Cell 3: the top-10 continuation strings."""
    return _literal_after(c[3].splitlines()[0], "=>")


def layer_scores(c):
    """Cell 5: ({layer: attn}, {layer: ffn}, attn sum, ffn sum), values rounded to 3 d.p."""
    lines = c[5].splitlines()
    sums = re.findall(r"sum:\s+(\S+)", lines[0])
    attn = {int(k): v for k, v in _literal_after(lines[1], "attn:")}
    ffn = {int(k): v for k, v in _literal_after(lines[2], "ffn:")}
    return attn, ffn, float(sums[0]), float(sums[1])


def top_heads(c):
    """Cell 6: [(name, score)] highest first, 4 d.p."""
    return [(n, v) for n, v in ast.literal_eval(c[6].splitlines()[0])]


def head_positions(c):
    """Cell 7: {position: (increase, attention)}, 4 d.p."""
    out = {}
    for line in c[7].splitlines():
        m = re.match(r"\s*(\d+)\s.*increase:\s+(\S+)\s+attn:\s+(\S+)", line)
        if m:
            out[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    return out


def neuron_list(text):
    """Cells 9, 16, 18 (and 11): [(name, score, top10, last10)] in print order."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\d+(?:_\d+)+) (-?[\d.]+)(?: top10:\s+(.*))?$", line)
        if not m:
            continue
        name, score = m.group(1), float(m.group(2))
        if m.group(3):  # cell 11: "name score top10: [...]" then "name score last10: [...]"
            last = _literal_after(lines[i + 1], "last10:")
            out.append((name, score, ast.literal_eval(m.group(3)), last))
        elif i + 2 < len(lines) and lines[i + 1].startswith("top10:"):
            out.append((name, score, _literal_after(lines[i + 1], "top10:"),
                        _literal_after(lines[i + 2], "last10:")))
    return out


def q1_slots(c):
    """Cell 13: {slot index: score}; printed x = index/2 - 0.5."""
    pairs = ast.literal_eval(c[13].splitlines()[0])
    return {int(round(2 * x + 1)): v for x, v in pairs}


def q2(c):
    """Cell 14: (average layer, {slot index: score} of the 10 printed slots, full precision)."""
    lines = c[14].splitlines()
    avg = float(lines[0].split(":", 1)[1])
    pairs = ast.literal_eval(lines[1])
    return avg, {int(round(2 * x + 1)): v for x, v in pairs}


def hidden_view(c):
    """Cell 19: (top10, last10) token strings."""
    lines = c[19].splitlines()
    return _literal_after(lines[0], "top:"), _literal_after(lines[1], "last:")
