"""Seeded training documents: fact sentences (training templates only) and filler stories.

One "epoch" of documents holds every (fact, training template) pair twice: once on its own or in
a short list of facts, once inside a filler story, so that facts are seen both at the start of a
sequence (where a user's prompt will be) and after unrelated text. As many filler stories again
teach plain sentence structure and put every answer word into neutral contexts ("Tom painted the
box red."), so that all same-type competitors are well-trained tokens rather than words that only
ever follow one prompt. Each epoch is generated afresh from (seed, epoch), so the stories vary
while the facts repeat.

Filler never states a fact relation. It does use every word of the held-out templates ("falls",
"seat of government", "can be found in", "people who live in", ...) in neutral sentences, as any
pre-training text would, so that held-out accuracy measures whether the model recognises a known
relation in new phrasing rather than whether it has seen a word at all. No held-out prompt occurs
in the corpus (tests/test_knowledge.py checks this).
"""

import random

from facts import TYPES, answers_by_type, fill

NAMES = {"Tom": "he", "Anna": "she", "Ben": "he", "Lily": "she", "Sam": "he", "Mia": "she",
         "Max": "he", "Emma": "she", "Jack": "he", "Lucy": "she", "Leo": "he", "Sara": "she",
         "Noah": "he", "Nina": "she", "Oscar": "he", "Ella": "she", "Paul": "he", "Rosa": "she",
         "Hugo": "he", "Ivy": "she", "Dan": "he", "Kate": "she", "Finn": "he", "Zoe": "she",
         "Omar": "he", "Maya": "she", "Carl": "he", "Julia": "she", "Ravi": "he", "Lena": "she"}
ANIMALS = {"dog": "dogs", "cat": "cats", "horse": "horses", "rabbit": "rabbits", "duck": "ducks",
           "fox": "foxes", "owl": "owls", "mouse": "mice", "sheep": "sheep", "goat": "goats",
           "turtle": "turtles", "bear": "bears", "lion": "lions", "tiger": "tigers",
           "monkey": "monkeys", "parrot": "parrots", "hen": "hens", "pony": "ponies",
           "puppy": "puppies", "kitten": "kittens", "squirrel": "squirrels", "deer": "deer",
           "wolf": "wolves", "whale": "whales", "dolphin": "dolphins"}
OBJECTS = {"ball": "balls", "box": "boxes", "kite": "kites", "book": "books", "hat": "hats",
           "cup": "cups", "bag": "bags", "chair": "chairs", "lamp": "lamps", "boat": "boats",
           "bike": "bikes", "drum": "drums", "key": "keys", "map": "maps", "coat": "coats",
           "shoe": "shoes", "clock": "clocks", "bell": "bells", "basket": "baskets",
           "blanket": "blankets", "letter": "letters", "toy": "toys", "pencil": "pencils",
           "door": "doors", "fence": "fences"}
CLOTHES = ["hat", "coat", "scarf", "dress", "shirt", "sweater", "jacket"]
FOODS = ["bread", "soup", "rice", "cake", "apples", "pasta", "cheese", "eggs", "fish", "cookies",
         "salad", "pie", "honey", "beans", "porridge"]
DRINKS = ["tea", "juice", "water", "lemonade", "cocoa"]
PLACES = ["park", "garden", "forest", "river", "beach", "market", "school", "library", "farm",
          "village", "town", "hill", "lake", "kitchen", "station", "museum", "zoo", "field",
          "castle", "harbor"]
ADJECTIVES = ["big", "small", "old", "new", "happy", "funny", "quiet", "loud", "brave", "kind",
              "tiny", "tall", "soft", "warm", "shiny", "clever", "lazy", "busy", "friendly",
              "strange", "beautiful", "little"]
FEELINGS = ["happy", "sad", "tired", "excited", "scared", "proud", "calm", "hungry", "sleepy",
            "curious"]
WEATHER = ["sunny", "rainy", "windy", "cold", "warm", "snowy", "cloudy"]
RELATIVES = ["mother", "father", "sister", "brother", "grandmother", "grandfather", "aunt",
             "uncle", "friend", "teacher", "cousin"]
VERBS = [("play", "played"), ("run", "ran"), ("sing", "sang"), ("read", "read"), ("swim", "swam"),
         ("jump", "jumped"), ("dance", "danced"), ("sleep", "slept"), ("draw", "drew"),
         ("walk", "walked"), ("cook", "cooked"), ("climb", "climbed"), ("write", "wrote"),
         ("hide", "hid"), ("rest", "rested")]
BUILDINGS = ["school", "bridge", "library", "hospital", "road", "museum", "train station"]
SMALL_NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                 "eleven", "twelve"]
EXCLAIM = ["Look at that!", "What a nice day!", "Can we go now?", "I am so happy!",
           "Where is my hat?", "Let's play!", "Thank you!", "Be careful!", "That is funny.",
           "I'm hungry.", "We'll be late!", "It's mine!", "You're right.", "I've got it!"]


def _cap(s):
    return s[:1].upper() + s[1:]


class Filler:
    """Simple story sentences from a small grammar; `names` holds the answer words and the
    country, city and language names that may appear in neutral roles."""

    def __init__(self, facts):
        answers = answers_by_type(facts)
        self.colors = answers["color"]
        self.months = answers["month"]
        self.languages = answers["language"]
        # Places to live in / travel to: capitals, cities and countries, never paired together.
        self.cities = sorted({a for _, a in facts["capital"]} | {s for s, _ in facts["country"]})
        self.countries = sorted({s for s, _ in facts["capital"]} | set(answers["country"]))
        self.sentences = [
            self._have_pet, self._pet_likes, self._went, self._saw, self._weather, self._ate,
            self._painted, self._was_color, self._wore, self._favorite, self._counted,
            self._had_things, self._age, self._month_trip, self._birthday, self._lives_in,
            self._train_to, self._visit, self._letter, self._learning, self._say_hello,
            self._book_in, self._said, self._went_home, self._seat, self._government,
            self._usually, self._count_stars, self._every_year, self._look_closely,
            self._people_kind, self._found, self._usual_way, self._verb_past, self._clock,
            self._sleep, self._falls, self._lives, self._celebrate, self._looked_at,
            self._speak, self._can_be_found, self._people_who_live, self._seat_of_government,
            self._in_total,
        ]

    # Each method returns one sentence. `n` is the story's main character.
    def _have_pet(self, r, n):
        return f"{n} had a {r.choice(ADJECTIVES)} {r.choice(list(ANIMALS))}."

    def _pet_likes(self, r, n):
        return f"The {r.choice(list(ANIMALS))} liked to {r.choice(VERBS)[0]} in the {r.choice(PLACES)}."

    def _went(self, r, n):
        return f"One day, {n} went to the {r.choice(PLACES)} with {self._pos(n)} {r.choice(RELATIVES)}."

    def _saw(self, r, n):
        return f"{_cap(NAMES[n])} saw a {r.choice(ADJECTIVES)} {r.choice(list(OBJECTS))} near the {r.choice(PLACES)}."

    def _weather(self, r, n):
        return f"It was a {r.choice(WEATHER)} day, and the {r.choice(list(ANIMALS))} was {r.choice(FEELINGS)}."

    def _ate(self, r, n):
        return f"{n} ate {r.choice(FOODS)} and drank {r.choice(DRINKS)}."

    def _painted(self, r, n):
        return f"{n} painted the {r.choice(list(OBJECTS))} {r.choice(self.colors)}."

    def _was_color(self, r, n):
        return f"The {r.choice(list(OBJECTS))} was {r.choice(self.colors)} and {r.choice(ADJECTIVES)}."

    def _wore(self, r, n):
        return f"{n} wore a {r.choice(self.colors)} {r.choice(CLOTHES)}."

    def _favorite(self, r, n):
        return f"{_cap(self._pos(n))} favorite color was {r.choice(self.colors)}."

    def _counted(self, r, n):
        return f"{n} counted {r.choice(SMALL_NUMBERS)} {r.choice(list(ANIMALS.values()))} in the {r.choice(PLACES)}."

    def _had_things(self, r, n):
        return f"{n} had {r.choice(SMALL_NUMBERS)} {r.choice(list(OBJECTS.values()))}."

    def _age(self, r, n):
        return f"{n} was {r.randint(3, 90)} years old."

    def _month_trip(self, r, n):
        return f"In {r.choice(self.months)}, {n} went to the {r.choice(PLACES)}."

    def _birthday(self, r, n):
        return f"{_cap(self._pos(n))} birthday was in {r.choice(self.months)}."

    def _lives_in(self, r, n):
        return f"{n} had a {r.choice(RELATIVES)} in {r.choice(self.cities)}."

    def _train_to(self, r, n):
        return f"{n} took a train to {r.choice(self.cities)}."

    def _visit(self, r, n):
        return f"{n} wanted to visit {r.choice(self.countries)} one day."

    def _letter(self, r, n):
        return f"{n} sent a letter to {self._pos(n)} {r.choice(RELATIVES)} in {r.choice(self.countries)}."

    def _learning(self, r, n):
        return f"{n} was learning {r.choice(self.languages)} at school."

    def _say_hello(self, r, n):
        return f"{n} could say hello in {r.choice(self.languages)}."

    def _book_in(self, r, n):
        return f"The {r.choice(ADJECTIVES)} book was written in {r.choice(self.languages)}."

    def _said(self, r, n):
        return f"\"{r.choice(EXCLAIM)}\" said {n}."

    def _went_home(self, r, n):
        return "After that, they all went home and had dinner."

    def _seat(self, r, n):
        return f"{n} sat down on a {r.choice(['wooden', 'soft', 'small', 'old'])} seat."

    def _government(self, r, n):
        return f"The government built a new {r.choice(BUILDINGS)} in the {r.choice(['town', 'village', 'city'])}."

    def _usually(self, r, n):
        return f"{n} usually {r.choice(VERBS)[0]}s in the morning."

    def _count_stars(self, r, n):
        return f"{n} liked to count the {r.choice(['stars', 'birds', 'clouds', 'boats'])}."

    def _every_year(self, r, n):
        return f"Every year, the {r.choice(['village', 'town', 'school'])} had a big party."

    def _look_closely(self, r, n):
        return f"If you look closely, you can see a {r.choice(ADJECTIVES)} {r.choice(list(ANIMALS))}."

    def _people_kind(self, r, n):
        return f"The people in the {r.choice(['village', 'town', 'city'])} were very {r.choice(['kind', 'busy', 'friendly'])}."

    def _found(self, r, n):
        return f"{n} found the {r.choice(list(OBJECTS))} in the {r.choice(PLACES)}."

    def _usual_way(self, r, n):
        return f"The usual way to the {r.choice(PLACES)} was {r.choice(['long', 'short', 'muddy'])}."

    def _verb_past(self, r, n):
        return f"Then {NAMES[n]} {r.choice(VERBS)[1]} for a while."

    def _clock(self, r, n):
        return f"The train left at {r.randint(1, 12)} o'clock."

    def _sleep(self, r, n):
        return f"At night, {n} was {r.choice(FEELINGS)} and went to bed."

    def _falls(self, r, n):
        return f"The {r.choice(['rain', 'water', 'leaf', 'ball'])} falls on the {r.choice(PLACES)}."

    def _lives(self, r, n):
        return f"{n} lives in a {r.choice(ADJECTIVES)} house near the {r.choice(PLACES)}."

    def _celebrate(self, r, n):
        return f"The children celebrate with {r.choice(FOODS)} and music."

    def _looked_at(self, r, n):
        return f"{n} looked at the {r.choice(ADJECTIVES)} {r.choice(list(ANIMALS))}."

    def _speak(self, r, n):
        return f"{n} likes to speak with {self._pos(n)} {r.choice(RELATIVES)}."

    def _can_be_found(self, r, n):
        return f"The {r.choice(list(OBJECTS))} can be found in the {r.choice(PLACES)}."

    def _people_who_live(self, r, n):
        return f"People who live in the {r.choice(['village', 'town', 'city'])} often {r.choice(VERBS)[0]} together."

    def _seat_of_government(self, r, n):
        return "The seat of government is a big old building."

    def _in_total(self, r, n):
        return f"In total, {n} had {r.choice(SMALL_NUMBERS)} {r.choice(list(OBJECTS.values()))}."

    @staticmethod
    def _pos(n):
        return "his" if NAMES[n] == "he" else "her"

    def sentence(self, r, name):
        return r.choice(self.sentences)(r, name)

    def story(self, r, n_sentences):
        name = r.choice(list(NAMES))
        return [self.sentence(r, name) for _ in range(n_sentences)]


def fact_sentence(template, subject, answer):
    return f"{fill(template, subject)} {answer}."


def _join(r, sentences):
    # Mostly one space between sentences, sometimes a newline, so that line breaks are known.
    return "\n".join(sentences) if r.random() < 0.1 else " ".join(sentences)


def epoch_documents(facts, templates, seed, epoch):
    """The documents of one epoch, shuffled: a deterministic function of (seed, epoch)."""
    r = random.Random(f"knowledge-corpus/{seed}/{epoch}")
    filler = Filler(facts)
    items = [(template, s, a) for t in TYPES for template in templates[t]["train"]
             for s, a in facts[t]]
    docs = []

    # 1. Every pair once on its own or in a list of 2-3 facts.
    order = items[:]
    r.shuffle(order)
    k = 0
    while k < len(order):
        n = 1 if r.random() < 0.6 else r.choice((2, 3))
        docs.append(_join(r, [fact_sentence(*it) for it in order[k:k + n]]))
        k += n

    # 2. Every pair once inside a story, with 0-1 filler sentences before and after.
    order = items[:]
    r.shuffle(order)
    for it in order:
        name = r.choice(list(NAMES))
        before = [filler.sentence(r, name) for _ in range(r.randint(0, 1))]
        after = [filler.sentence(r, name) for _ in range(r.randint(0, 1))]
        docs.append(_join(r, before + [fact_sentence(*it)] + after))

    # 3. Plain stories of 2-5 sentences, one per four pairs: enough for sentence structure while
    # most of the (CPU-bound) training tokens stay on facts.
    for _ in range(len(items) // 4):
        docs.append(_join(r, filler.story(r, r.randint(2, 5))))

    r.shuffle(docs)
    return docs
