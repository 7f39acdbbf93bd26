"""The curated facts and prompt templates (facts/*.tsv), and the prompts built from them."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
FACTS_DIR = os.path.join(HERE, "facts")

# The paper's six knowledge types (spec section 5.2), in a fixed order used everywhere.
TYPES = ("language", "capital", "country", "color", "number", "month")


def _read_tsv(path):
    """Rows of a tab-separated file as dicts, skipping '#' comment lines; the first other line
    is the header."""
    rows, header = [], None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cells = line.split("\t")
            if header is None:
                header = cells
                continue
            if len(cells) != len(header) or not all(c.strip() == c and c for c in cells):
                raise ValueError(f"{path}:{lineno}: expected {len(header)} clean cells: {line!r}")
            rows.append(dict(zip(header, cells)))
    return rows


def load_facts(facts_dir=FACTS_DIR):
    """{type: [(subject, answer), ...]} in file order. Answers are words without their leading
    space; as tokens they read ' ' + answer."""
    out = {}
    for t in TYPES:
        rows = _read_tsv(os.path.join(facts_dir, f"{t}.tsv"))
        pairs = [(r["subject"], r["answer"]) for r in rows]
        subjects = [s for s, _ in pairs]
        if len(set(subjects)) != len(subjects):
            raise ValueError(f"{t}.tsv: duplicate subjects")
        if any(" " in a or not a.isascii() for _, a in pairs):
            raise ValueError(f"{t}.tsv: answers must be single ASCII words")
        out[t] = pairs
    return out


def load_templates(facts_dir=FACTS_DIR):
    """{type: {"train": [template, ...], "heldout": [...]}}."""
    out = {t: {"train": [], "heldout": []} for t in TYPES}
    for r in _read_tsv(os.path.join(facts_dir, "templates.tsv")):
        if r["type"] not in out or r["split"] not in ("train", "heldout"):
            raise ValueError(f"templates.tsv: bad row {r}")
        if ("{s}" in r["template"]) == ("{S}" in r["template"]):
            raise ValueError(f"templates.tsv: need exactly one of {{s}}, {{S}}: {r['template']!r}")
        out[r["type"]][r["split"]].append(r["template"])
    return out


def fill(template, subject):
    """The prompt for one subject: {S} capitalises the subject's first letter."""
    return template.replace("{S}", subject[:1].upper() + subject[1:]).replace("{s}", subject)


def answers_by_type(facts):
    """{type: sorted distinct answers}: the same-type competitor sets."""
    return {t: sorted({a for _, a in pairs}) for t, pairs in facts.items()}


def prompts(facts, templates, split):
    """Every (fact, template) prompt of a split, as dicts in a fixed order (type, template, fact):
    prompt, target (with its leading space), type, competitors (the other answers of the type,
    with leading spaces), subject, template."""
    answers = answers_by_type(facts)
    out = []
    for t in TYPES:
        for template in templates[t][split]:
            for subject, answer in facts[t]:
                out.append({"prompt": fill(template, subject), "target": " " + answer, "type": t,
                            "competitors": [" " + a for a in answers[t] if a != answer],
                            "subject": subject, "template": template})
    return out
