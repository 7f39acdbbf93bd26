#!/usr/bin/python3
"""Writes data/tinystories-cloze.jsonl: short TinyStories-style stories in which a name, an object,
an animal or a place is introduced and then comes back as the natural next token, for
`reslens experiment` on the TinyStories models (the paper's knowledge dataset needs world
knowledge these models do not have; repeating what the story said is what they can do).

Each line: {"prompt", "target", "type", "template"}. The target is the exact token that follows
the prompt when the whole story is tokenized (checked with `reslens tokenize`), written as that
token's text ("Lily " for the piece "Lily▁": this vocabulary glues the following space to a word).
Candidates whose word is several tokens, or whose prompt tokenizes differently once the story goes
on, are dropped. Competitors are left to the experiment: every other target of the same type.

Deterministic for a seed: `random.Random(seed)` picks the fillers, and the output is sorted the
way it was generated.

    /usr/bin/python3 scripts/make_cloze_dataset.py [--reslens build/reslens] [--seed 1] [--per-template 40]
"""
import argparse
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

GIRLS = ["Lily", "Sue", "Mia", "Lucy", "Amy", "Anna", "Sally", "Sara", "Jane"]
BOYS = ["Tim", "Tom", "Max", "Ben", "Sam", "Bob", "Jack", "John"]
OBJECTS = ["ball", "toy", "car", "box", "book", "cake", "key", "boat", "truck", "rock", "flower", "kite",
           "hat", "doll", "cup", "picture", "bike", "drum", "apple", "shell"]
ANIMALS = ["bird", "dog", "cat", "fish", "bear", "bug", "mouse", "frog", "squirrel", "bunny", "rabbit", "ant",
           "duck", "cow", "lion", "puppy", "owl", "horse", "pig", "monkey"]
PLACES = ["park", "house", "room", "store", "garden", "kitchen", "school", "beach", "forest", "lake", "zoo",
          "farm", "river", "pond", "hill", "yard", "shop", "library", "castle", "town"]
ADJECTIVES = ["red", "big", "little", "blue", "shiny", "pretty", "old", "new", "green", "yellow"]

# (type, template, continuation). {N} = the story's child, {P}/{p} = he/she, {h} = his/her,
# {g} = girl/boy, {X} = the repeated word (the target), {A} = an adjective. The prompt is the
# template up to {X}'s second appearance, which is where the target goes.
TEMPLATES = [
    ("name", "Once upon a time, there was a little {g} named {X}. {X} liked to play outside. One day, {X}", " went to the park."),
    ("name", "There was a {g} named {X}. {P} had a big ball. Every day, {X}", " played with it."),
    ("name", "Once upon a time, a little {g} named {X} lived in a small house. Every morning, {X}", " ate breakfast."),
    ("name", "Once upon a time, there was a {g} called {X}. {X} loved to play with {h} toys. One day, {X}", " found a box."),
    ("name", "{X} was a happy {g}. {P} liked to run and jump. One day, {X}", " saw a bird."),
    ("name", "Once upon a time, there was a kind {g} named {X}. {P} had many friends. One day, {X}", " went for a walk."),
    ("object", "Once upon a time, there was a little {g} named {N}. {P} had a {A} {X}. {P} loved {h} {X}", " very much."),
    ("object", "{N} found a {X} in the park. {P} picked up the {X}", " and smiled."),
    ("object", "One day, {N} saw a big {X}. {P} wanted to play with the {X}", " all day."),
    ("object", "{N} had a new {X}. {P} played with the {X}", " every day."),
    ("object", "Once upon a time, {N} got a {A} {X} from {h} mom. {N} took the {X}", " outside."),
    ("animal", "Once upon a time, there was a little {X}. The {X}", " lived in a tree."),
    ("animal", "{N} saw a {X} in the park. The {X}", " was very happy."),
    ("animal", "One day, a {A} {X} came to {N}'s house. The {X}", " wanted to play."),
    ("animal", "{N} had a pet {X}. Every day, {N} played with the {X}", " in the yard."),
    ("animal", "Once upon a time, there was a {A} {X}. One day, the {X}", " went for a walk."),
    ("place", "{N} went to the {X} with {h} mom. At the {X}", ", {p} saw a dog."),
    ("place", "One day, {N} and {h} mom went to the {X}. They had fun at the {X}", " all day."),
    ("place", "{N} liked to play in the {X}. Every day, {p} went to the {X}", " to play."),
    ("place", "Once upon a time, there was a big {X}. Many kids liked to play in the {X}", " every day."),
    ("place", "{N} and {h} friend went to the {X}. They played in the {X}", " until dark."),
]
FILLERS = {"name": GIRLS + BOYS, "object": OBJECTS, "animal": ANIMALS, "place": PLACES}


def tokenize(reslens, model, text):
    out = subprocess.run([reslens, "tokenize", model, text, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def fill(template, kind, word, rng):
    """The story with `word` as {X}; the child is the word itself for names, else a random one."""
    name = word if kind == "name" else rng.choice(GIRLS + BOYS)
    girl = name in GIRLS
    return template.format(X=word, N=name, g="girl" if girl else "boy", P="She" if girl else "He",
                           p="she" if girl else "he", h="her" if girl else "his", A=rng.choice(ADJECTIVES))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reslens", default=os.path.join(ROOT, "build", "reslens"))
    ap.add_argument("--model", default=os.path.join(ROOT, "..", "shared", "models", "TinyStories-656K"))
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "tinystories-cloze.jsonl"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-template", type=int, default=40, help="candidate stories per template")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    seen, rows, dropped = set(), [], 0
    for ti, (kind, template, cont) in enumerate(TEMPLATES):
        words = FILLERS[kind]
        for _ in range(args.per_template):
            word = rng.choice(words)
            story = fill(template, kind, word, rng)
            prompt = story[:-len(word)]  # every template ends with the word's return
            if prompt in seen:
                continue
            seen.add(prompt)
            full = tokenize(args.reslens, args.model, story + cont)
            head = tokenize(args.reslens, args.model, prompt)
            n = len(head["ids"])
            # The prompt must tokenize as the story's beginning, and the word must be one whole token.
            ok = full["ids"][:n] == head["ids"] and len(full["pieces"]) > n and \
                full["pieces"][n].replace("\u2581", " ").strip() == word
            if not ok:
                dropped += 1
                continue
            rows.append({"prompt": prompt, "target": full["pieces"][n].replace("\u2581", " "), "type": kind,
                         "template": ti})
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = {}
    for r in rows:
        counts[r["type"]] = counts.get(r["type"], 0) + 1
    print(f"{args.out}: {len(rows)} sentences {counts}; {dropped} candidates dropped (not one token in context)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
