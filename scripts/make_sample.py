#!/usr/bin/env python
"""Generate the bundled FLAN-style sample, ``data/sample/instructions.jsonl``.

Synthetic instruction-tuning data: a few thousand rows over 37 tasks in 15 families (NLI, reading
comprehension, closed-book QA, commonsense, sentiment, topic classification, summarisation, translation,
math, code, dialogue, paraphrase, coreference, struct-to-text, word segmentation). Every task has several
FLAN-like prompt templates filled from small built-in vocabularies, and four template types:
``zs_opt`` / ``zs_noopt`` (zero-shot with / without an ``OPTIONS:`` list) and ``fs_opt`` / ``fs_noopt``
(one to three worked exemplars before the query). Task sizes follow a Zipf-like spread (400 down to 15).

Deterministic: the same ``--seed`` gives byte-identical output (no set iteration, no hash(), string
seeds for ``random.Random``)::

    python scripts/make_sample.py --out data/sample/instructions.jsonl --seed 7
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_TYPES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")
ZS_ONLY = ("zs_opt", "zs_noopt")
FS_ONLY = ("fs_opt", "fs_noopt")
NOOPT_ONLY = ("zs_noopt", "fs_noopt")
MAX_WORDS = 300
MAX_SIZE, MIN_SIZE = 400, 15

R = random.Random


# --------------------------------------------------------------------------------------------------
# Building blocks


@dataclass(frozen=True)
class Example:
    """One filled instance: template fields, the answer, and the options for ``*_opt`` templates."""

    fields: dict[str, str]
    answer: str
    options: tuple[str, ...]
    opt_answer: str | None = None  # the answer as written among the options, when that differs


@dataclass(frozen=True)
class Template:
    """A prompt/response pair; ``opt=False`` marks templates that make no sense with options."""

    prompt: str
    response: str = "{answer}"
    opt: bool = True


@dataclass(frozen=True)
class TaskSpec:
    """A task: its generator, templates and the template types it has rows for."""

    name: str
    family: str
    gen: Callable[[random.Random], Example]
    templates: tuple[Template, ...]
    types: tuple[str, ...] = TEMPLATE_TYPES
    max_shots: int = 3


def T(prompt: str, response: str = "{answer}", opt: bool = True) -> Template:  # noqa: N802
    return Template(prompt, response, opt)


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def mc(rng: random.Random, answer: str, distractors: list[str], k: int) -> tuple[str, ...]:
    """Answer plus up to k-1 distinct distractors, shuffled."""
    pool = [d for d in dict.fromkeys(distractors) if d != answer]
    picked = rng.sample(pool, min(k - 1, len(pool)))
    opts = [answer, *picked]
    rng.shuffle(opts)
    return tuple(opts)


def num_options(rng: random.Random, answer: int, k: int = 4) -> tuple[str, ...]:
    """The right number and k-1 nearby wrong ones."""
    wrong: list[int] = []
    while len(wrong) < k - 1:
        delta = rng.choice([-1, 1]) * rng.choice([1, 2, 3, 5, 10, max(1, abs(answer) // 10)])
        cand = answer + delta
        if cand != answer and cand not in wrong and cand >= 0:
            wrong.append(cand)
    opts = [str(answer), *map(str, wrong)]
    rng.shuffle(opts)
    return tuple(opts)


PEOPLE = [
    ("Maria", "she"), ("James", "he"), ("Aisha", "she"), ("Kenji", "he"), ("Lucas", "he"),
    ("Priya", "she"), ("Olga", "she"), ("Tom", "he"), ("Fatima", "she"), ("Diego", "he"),
    ("Hannah", "she"), ("Samuel", "he"), ("Mei", "she"), ("Omar", "he"), ("Elena", "she"),
    ("Noah", "he"), ("Zara", "she"), ("Ivan", "he"), ("Chloe", "she"), ("Ravi", "he"),
    ("Ingrid", "she"), ("Mateo", "he"), ("Nadia", "she"), ("Felix", "he"),
]
SURNAMES = [
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Almeida", "Kowalski", "Brennan", "Haddad", "Castillo",
    "Novak", "Whitfield", "Sato", "Petrov", "Mensah", "Larsen", "Dubois", "Ferreira", "Kaur",
]
TOWNS = [
    "Marrowfield", "Castelbrun", "Oskarvik", "Port Alden", "Santa Velia", "Kirrin Bay", "Dunmore Heath",
    "Rovena", "Ebbington", "Norvik", "Calder Rise", "Valmonte", "Ashgrove", "Lake Tessaly",
]
REGIONS = [
    "northern Portugal", "the south of France", "western Norway", "central Poland", "eastern Canada",
    "southern Chile", "the north of England", "coastal Peru", "northern Italy", "Western Australia",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
COMPANIES = ["Norwell Systems", "Brightline Foods", "Kestrel Motors", "Halcyon Pharma", "Vantor Energy",
             "Bluefin Logistics", "Oakridge Textiles", "Strata Semiconductors", "Meridian Air",
             "Pellucid Bank"]


def person(rng: random.Random, gender: str | None = None) -> dict[str, str]:
    """A first name with matching pronoun forms (p, P, obj, pos, Pos)."""
    choices = [x for x in PEOPLE if gender is None or x[1] == gender]
    name, p = rng.choice(choices)
    obj, pos = ("him", "his") if p == "he" else ("her", "her")
    return {"name": name, "p": p, "P": p.capitalize(), "obj": obj, "pos": pos, "Pos": pos.capitalize()}


def full_name(rng: random.Random) -> str:
    return f"{rng.choice(PEOPLE)[0]} {rng.choice(SURNAMES)}"


# --------------------------------------------------------------------------------------------------
# NLI


AGENTS = [  # (specific, general, plural)
    ("A young woman in a blue dress", "A woman", False),
    ("Two boys wearing soccer jerseys", "Two children", True),
    ("An elderly man with a cane", "A man", False), ("A group of tourists with cameras", "Some people", True),
    ("A girl with a red ponytail", "A girl", False), ("A firefighter in full gear", "A person", False),
    ("Three women in matching aprons", "Some women", True), ("A man with a long grey beard", "A man", False),
    ("A toddler in a yellow raincoat", "A child", False), ("Two musicians in black suits", "Two men", True),
]
ACTIONS = [  # (specific, general, contradicting)
    ("playing the violin", "playing an instrument", "sleeping on a sofa"),
    ("riding a bicycle", "riding something", "swimming in a lake"),
    ("reading a newspaper", "reading", "dancing at a wedding"),
    ("cooking pasta", "preparing food", "repairing a car engine"),
    ("painting a wooden fence", "painting", "eating dinner"),
    ("throwing a frisbee", "playing with a toy", "typing on a laptop"),
    ("carrying boxes up the stairs", "carrying something", "lying in bed"),
    ("selling vegetables", "selling food", "flying a kite"),
]
PLACES = [  # (specific, general, contradicting)
    ("in a crowded park", "outside", "inside a quiet library"),
    ("on a busy street corner", "outdoors", "inside a house"),
    ("in a small kitchen", "indoors", "on a sandy beach"),
    ("on a sandy beach", "outside", "in an office"),
    ("next to a stone fountain", "outdoors", "in a dark basement"),
    ("in front of a train station", "outside", "on a mountain top"),
]
NEUTRALS = ["to earn money for college", "for the first time", "because it is a birthday",
            "while waiting for a friend", "before a big competition", "for a television show"]
NATIONALITIES = ["Portuguese", "Norwegian", "Canadian", "Kenyan", "Japanese", "Chilean", "Polish", "Irish",
                 "Brazilian", "Dutch"]
PROFESSIONS = [  # (profession, known-for template)
    ("novelist", "the novel '{work}'"), ("architect", "designing the {town} Central Library"),
    ("composer", "the opera '{work}'"), ("film director", "the documentary '{work}'"),
    ("marine biologist", "a long study of the coral reefs off {region}"),
    ("photographer", "a series of portraits of fishermen in {town}"),
    ("economist", "the book '{work}'"), ("painter", "the mural '{work}'"),
]
WORKS = ["The Salt Road", "Winter Light", "A House of Rivers", "The Long Field", "Northern Letters",
         "Glass and Iron", "The Orchard Keeper", "Small Hours", "The Quiet Harbour", "Paper Lanterns"]
PRIZES = ["the Halden Prize", "the Meridian Award", "a national arts award", "the Ostrava Medal"]


def scene_pair(rng: random.Random) -> tuple[str, str, str]:
    """(premise, hypothesis, label) over a street-scene premise."""
    agent, agent_g, plural = rng.choice(AGENTS)
    act, act_g, act_c = rng.choice(ACTIONS)
    place, place_g, place_c = rng.choice(PLACES)
    be = "are" if plural else "is"
    premise = f"{agent} {be} {act} {place}."
    label = rng.choice(["entailment", "neutral", "contradiction"])
    if label == "entailment":
        hyp = rng.choice([f"{agent_g} {be} {act_g} {place_g}.", f"{agent_g} {be} {act_g}.",
                          f"{agent_g} {be} {place_g}."])
    elif label == "contradiction":
        hyp = rng.choice([f"{agent_g} {be} {act_c}.", f"{agent_g} {be} {act} {place_c}."])
    else:
        hyp = f"{agent_g} {be} {act} {rng.choice(NEUTRALS)}."
    return premise, hyp, label


def bio(rng: random.Random) -> dict[str, str]:
    """A short fictional biography with its facts."""
    who = person(rng)
    surname = rng.choice(SURNAMES)
    year = rng.randint(1941, 1992)
    prof, known = rng.choice(PROFESSIONS)
    town, region = rng.choice(TOWNS), rng.choice(REGIONS)
    work, prize = rng.choice(WORKS), rng.choice(PRIZES)
    nat = rng.choice(NATIONALITIES)
    year1 = year + rng.randint(24, 30)
    known_txt = known.format(work=work, town=town, region=region)
    text = (f"{who['name']} {surname} (born {rng.randint(1, 28)} {rng.choice(MONTHS)} {year}) is a {nat} "
            f"{prof}. Born in {town}, {who['p']} studied in {region} before settling abroad. {who['P']} is "
            f"best "
            f"known for {known_txt}, which won {prize} in {year1}.")
    return {**who, "full": f"{who['name']} {surname}", "surname": surname, "year": str(year), "prof": prof,
            "nat": nat, "town": town, "prize": prize, "year1": str(year1), "text": text}


def bio_pair(rng: random.Random) -> tuple[str, str, str]:
    b = bio(rng)
    y, y1 = int(b["year"]), int(b["year1"])
    label = rng.choice(["entailment", "neutral", "contradiction"])
    ent = [f"{b['full']} was born in the {y // 10 * 10}s.", f"{b['full']} was born in {b['town']}.",
           f"{b['full']} won {b['prize']} before {y1 + rng.randint(1, 9)}.",
           f"{b['full']} works as a {b['prof']}.", f"{b['full']} is {b['nat']}."]
    con = [f"{b['full']} was born after {y + rng.randint(2, 15)}.", f"{b['full']} has never won an award.",
           f"{b['full']} is a {rng.choice([p for p, _ in PROFESSIONS if p != b['prof']])}.",
           f"{b['full']} was born in {rng.choice([t for t in TOWNS if t != b['town']])}."]
    neu = [f"{b['full']} has two children.", f"{b['full']} speaks four languages.",
           f"{b['full']} still lives in {b['town']}.", f"{b['full']} won {b['prize']} more than once.",
           f"{b['P']} was the youngest person ever to win {b['prize']}."]
    hyp = rng.choice({"entailment": ent, "contradiction": con, "neutral": neu}[label])
    return b["text"], hyp, label


NLI3 = {"entailment": "yes", "neutral": "it is not possible to tell", "contradiction": "no"}
NLI3_OPTS = ("yes", "it is not possible to tell", "no")


def gen_anli(rng: random.Random) -> Example:
    premise, hyp, label = bio_pair(rng)
    return Example({"premise": premise, "hypothesis": hyp}, NLI3[label], NLI3_OPTS)


def gen_anli_r2(rng: random.Random) -> Example:
    premise, hyp, label = bio_pair(rng) if rng.random() < 0.6 else scene_pair(rng)
    if rng.random() < 0.5:  # round 2 premises are longer: a second, unrelated sentence
        premise = f"{premise} {scene_pair(rng)[0]}"
    return Example({"premise": premise, "hypothesis": hyp}, NLI3[label], NLI3_OPTS)


def gen_snli(rng: random.Random) -> Example:
    premise, hyp, label = scene_pair(rng)
    return Example({"premise": premise, "hypothesis": hyp}, NLI3[label], NLI3_OPTS)


def gen_rte(rng: random.Random) -> Example:
    premise, hyp, label = bio_pair(rng) if rng.random() < 0.7 else scene_pair(rng)
    return Example({"premise": premise, "hypothesis": hyp}, "yes" if label == "entailment" else "no",
                   ("yes", "no"))


ANLI_T = (
    T('{premise}\n\nBased on the paragraph above can we conclude that "{hypothesis}"?'),
    T("{premise}\n\nCan we draw the following conclusion?\n{hypothesis}"),
    T("{premise}\nDoes this next sentence follow, given the preceding text?\n{hypothesis}"),
    T("Read the text and determine if the sentence is true:\n\n{premise}\n\nSentence: {hypothesis}"),
    T("Read the following paragraph and determine if the hypothesis is true:\n\n{premise}\n\n"
      "Hypothesis: {hypothesis}"),
)
SNLI_T = (
    T("Premise: {premise}\n\nHypothesis: {hypothesis}\n\nDoes the premise entail the hypothesis?"),
    T('If "{premise}", does this mean that "{hypothesis}"?'),
    T('Given the sentence "{premise}" can we conclude that "{hypothesis}"?'),
    T('Here is a premise: "{premise}"\n\nHere is a hypothesis: "{hypothesis}"\n\n'
      "Does the premise tell us whether the hypothesis is true?"),
    T('Sentence 1: "{premise}"\nSentence 2: "{hypothesis}"\nIs sentence 2 true, based on sentence 1?'),
)
RTE_T = (
    T('{premise}\n\nBased on the paragraph above can we conclude that "{hypothesis}"?'),
    T("Determine if the sentence is true based on the text below:\n{hypothesis}\n\n{premise}"),
    T("{premise}\nQuestion with options: Can we draw the following conclusion?\n{hypothesis}"),
    T('{premise}\n\nQ: Does "{hypothesis}" follow from the text above?'),
)


# --------------------------------------------------------------------------------------------------
# Reading comprehension (squad, boolq, cosmos)

LANDMARKS = ["the Old Lighthouse", "St. Anselm's Cathedral", "the Iron Bridge", "the Harbour Market",
             "the Clock Tower", "the Botanical Garden", "the Salt Museum", "the Grand Theatre"]
INDUSTRIES = ["shipbuilding", "wool weaving", "wine making", "fishing", "salt mining", "glass making",
              "printing", "timber"]
FIELDS = ["marine engineering", "medicine", "agricultural science", "music", "geology", "economics"]
WATERS = ["the river Aln", "the river Vessa", "a wide sheltered bay", "the river Tarn", "a narrow estuary"]


def town_facts(rng: random.Random) -> dict[str, str]:
    town = rng.choice(TOWNS)
    founded = rng.randint(1150, 1790)
    return {
        "town": town, "region": rng.choice(REGIONS), "water": rng.choice(WATERS), "founded": str(founded),
        "founder": full_name(rng), "industry": rng.choice(INDUSTRIES),
        "pop": f"{rng.randint(12, 480)},{rng.randint(0, 999):03d}", "landmark": rng.choice(LANDMARKS),
        "completed": str(rng.randint(founded + 40, 1930)), "uni": str(rng.randint(1850, 1975)),
        "field": rng.choice(FIELDS), "club": f"{rng.choice(['FC', 'Athletic', 'United'])} {town}",
        "visitors": f"{rng.randint(2, 90) * 10},000",
    }


def town_text(f: dict[str, str], rng: random.Random) -> str:
    sents = [
        f"{f['town']} is a town in {f['region']}, on {f['water']}.",
        f"It was founded in {f['founded']} by {f['founder']}, and for centuries its economy depended on "
        f"{f['industry']}.",
        f"Today it has a population of about {f['pop']}.",
        f"The town is best known for {f['landmark']}, completed in {f['completed']}, which attracts around "
        f"{f['visitors']} visitors a year.",
        f"Its university, established in {f['uni']}, is known for its work in {f['field']}.",
        f"The local football club, {f['club']}, plays in the regional league.",
    ]
    extra = [
        f"In the nineteenth century the arrival of the railway brought new trade to {f['town']}.",
        "Much of the old town was rebuilt after a fire in the late 1800s.",
        "The surrounding countryside is popular with walkers and cyclists in summer.",
        "A ferry service connects the harbour with the nearby islands.",
    ]
    picked = sents[:2] + rng.sample(sents[2:], rng.randint(2, 4)) + rng.sample(extra, rng.randint(0, 2))
    return " ".join(picked)


def town_question(f: dict[str, str], rng: random.Random, text: str) -> tuple[str, str, list[str]]:
    """A (question, answer, distractors) whose answer is in the text."""
    qs = [
        (f"When was {f['town']} founded?", f["founded"], [f["completed"], f["uni"]]),
        (f"Who founded {f['town']}?", f["founder"], [full_name(rng), full_name(rng)]),
        (f"What did the economy of {f['town']} depend on for centuries?", f["industry"],
         [x for x in INDUSTRIES if x != f["industry"]][:3]),
        (f"How many people live in {f['town']}?", f"about {f['pop']}", [f"about {f['visitors']}"]),
        (f"What is {f['town']} best known for?", f["landmark"],
         [x for x in LANDMARKS if x != f["landmark"]][:3]),
        (f"When was {f['landmark']} completed?", f["completed"], [f["founded"], f["uni"]]),
        (f"What is the university in {f['town']} known for?", f"its work in {f['field']}",
         [f"its work in {x}" for x in FIELDS if x != f["field"]][:3]),
        (f"In which region is {f['town']}?", f["region"], [x for x in REGIONS if x != f["region"]][:3]),
    ]
    valid = [q for q in qs if q[1] in text]
    return rng.choice(valid)


def gen_squad(rng: random.Random, v2: bool = False) -> Example:
    f = town_facts(rng)
    text = town_text(f, rng)
    if v2 and rng.random() < 0.35:
        q = rng.choice([f"Who is the current mayor of {f['town']}?",
                        f"When was the university in {f['town']} closed?",
                        f"How many museums does {f['town']} have?", f"Who designed {f['landmark']}?",
                        f"What is the average rainfall in {f['town']}?"])
        return Example({"context": text, "question": q, "title": f["town"]}, "unanswerable",
                       mc(rng, "unanswerable", [f["founded"], f["founder"], f["landmark"]], 4))
    q, a, d = town_question(f, rng, text)
    opts = mc(rng, a, d + [f["founded"], f["landmark"]], 3 if v2 else 4)
    if v2:
        opts = (*opts, "unanswerable")
    return Example({"context": text, "question": q, "title": f["town"]}, a, opts)


def gen_boolq(rng: random.Random) -> Example:
    f = town_facts(rng)
    text = town_text(f, rng)
    truth = rng.random() < 0.55
    founded, town = int(f["founded"]), f["town"].lower()
    cands = [
        (f"was {town} founded before {founded + 50}", True),
        (f"was {town} founded before {founded - 30}", False),
        (f"is the economy of {town} based on {f['industry']}", True),
        (f"is {f['landmark'].lower()} in {town} older than the town", False),
        (f"was {town} founded by {f['founder'].lower()}", True),
        (f"was {town} founded by {full_name(rng).lower()}", False),
    ]
    q = rng.choice([c for c in cands if c[1] == truth] or cands)
    fields = {"title": f["town"], "text": text, "question": q[0]}
    return Example(fields, "yes" if q[1] else "no", ("no", "yes"))


SQUAD_T = (
    T("Read this and answer the question\n\n{context}\n\n{question}"),
    T("{context}\n\nQ: {question}"),
    T("Answer a question about this article:\n{context}\n{question}"),
    T("Here is a question about this article: {context}\nWhat is the answer to this question: {question}"),
    T("Article: {context}\n\nQuestion: {question}"),
)
SQUAD2_T = (
    T("{context}\n\nQ: {question}\n\nIf the question is unanswerable, say \"unanswerable\""),
    T("Read this: {context}\nNow answer this question, if there is an answer (If it cannot be answered, "
      "return \"unanswerable\"): {question}"),
    T("{title}\n\n{context}\n\nPlease answer a question about this article. If the question is "
      "unanswerable, say \"unanswerable\". {question}"),
    T("Try to answer this question if possible (otherwise reply \"unanswerable\"): {question}\n\n{context}"),
)
BOOLQ_T = (
    T("{text}\n\nCan we conclude that {question}?"),
    T("{text}\n\nIs it true that {question}?"),
    T("{title}\n\n{text}\n\n{question}?"),
    T("Read this: {text}\n\nAnswer this question: {question}?"),
)

COSMOS = [
    ("I finally picked up my car from the mechanic this morning. He told me the brakes were almost worn "
     "through and that I was lucky nothing happened on the highway. The repair cost more than I had planned, "
     "but I drove home feeling much safer.",
     [("Why might the narrator feel safer driving home?", "Because the worn brakes had been repaired.",
       ["Because the mechanic drove the car home for them.",
        "Because they had decided never to use the highway."]),
      ("What may happen to the narrator's budget this month?",
       "It will be tighter because the repair was expensive.",
       ["It will grow because the mechanic paid them.", "It will not change because the repair was free."])]),
    ("Yesterday was my first day at the {place} and I was so nervous I barely slept the night before. My "
     "manager, {name}, showed me around and introduced me to everyone on the team. By lunch I had already "
     "been given my own project.",
     [("What may happen after the narrator's first day?",
       "They will start working on the project they were given.",
       ["They will quit because nobody talked to them.", "They will go back to their old school."]),
      ("Why did the narrator barely sleep?", "They were nervous about starting a new job.",
       ["Their neighbours were having a loud party.",
        "They had to finish a project for {name} overnight."])]),
    ("We adopted a puppy from the shelter last weekend. {name} insisted on calling him Biscuit, and he has "
     "already chewed through two of my shoes. Still, when he curls up at the foot of the bed at night, I "
     "can't stay mad at him.",
     [("How does the narrator probably feel about the puppy?",
       "They are fond of him despite the trouble he causes.",
       ["They want to return him to the shelter right away.", "They are afraid of him."]),
      ("What might the narrator do about their shoes?", "Keep them somewhere the puppy cannot reach.",
       ["Give all their shoes to the shelter.", "Teach the puppy to wear shoes."])]),
    ("I stayed up until three in the morning studying for my {subject} exam. When I got to the classroom, "
     "I realised I had left my calculator at home. Luckily, {name} had a spare one and lent it to me.",
     [("What may be the reason the narrator was tired during the exam?",
       "They had stayed up very late studying.",
       ["They had run all the way to school.", "They had been at a party with {name}."]),
      ("How did the narrator probably feel about {name}?", "Grateful for the help with the calculator.",
       ["Annoyed that {name} sat next to them.", "Jealous of {name}'s grades."])]),
    ("My sister surprised me with tickets to see my favourite band in {town}. We had to drive four hours "
     "to get there and it rained the whole way. But the moment the band played their first song, we forgot "
     "all about the weather.",
     [("Why did the narrator forget about the weather?", "They were enjoying the concert so much.",
       ["The rain had stopped before they left home.", "The concert was held in their own town."]),
      ("What may be true about the narrator's sister?", "She knows which music the narrator likes.",
       ["She does not like driving in the rain.", "She plays in the band."])]),
    ("This spring I decided to grow my own tomatoes on the balcony. I watered them every morning, but by "
     "July only a few small green ones had appeared. My neighbour {name} says the balcony doesn't get "
     "enough sun.",
     [("What is likely true about the narrator's balcony?", "It is too shady for tomatoes to grow well.",
       ["It gets far too much rain for tomatoes.", "It is too small for any plant at all."]),
      ("What might the narrator try next year?", "Growing the tomatoes in a sunnier spot.",
       ["Watering the tomatoes three times a day.", "Asking {name} to stop growing tomatoes."])]),
    ("After ten years in the same flat, we finally moved to a house with a garden. Packing took weeks and "
     "we found boxes we hadn't opened since the last move. The kids already love having space to run around.",
     [("What might be the reason the family moved?", "They wanted more space, including a garden.",
       ["Their old flat was destroyed in a fire.", "The kids wanted to change schools."]),
      ("What does the narrator suggest about the boxes?",
       "Some things had been stored for years without being used.",
       ["All of the boxes were lost during the move.", "The boxes belonged to the previous owners."])]),
    ("I crossed the finish line of my first marathon in just under five hours. My legs were shaking and I "
     "could barely walk to the car, but {name} was waiting with a huge sign and a bag of oranges.",
     [("How did the narrator probably feel after the race?", "Exhausted but proud and supported.",
       ["Disappointed because nobody came to watch.", "Fresh enough to run another marathon."]),
      ("Why did {name} bring a sign?", "To cheer the narrator on at the finish.",
       ["To sell oranges to the other runners.", "To show the runners the way to the car park."])]),
    ("I tried to cook dinner for my parents' anniversary, following a recipe I found online. I didn't notice "
     "the oven was set to grill instead of bake, and the lasagna came out black on top. We ended up ordering "
     "pizza and laughing about it all evening.",
     [("Why did the family order pizza?", "The lasagna was burnt and could not be eaten.",
       ["The parents did not like lasagna.", "The oven would not turn on at all."]),
      ("How did the parents probably react?", "They found the mistake funny and enjoyed the evening.",
       ["They were angry and left the house.", "They asked for the recipe."])]),
    ("On the train home from {town} I realised my wallet was gone. I called the station the next morning, "
     "and to my surprise someone had handed it in with all the cash still inside. I left a thank-you note "
     "at the lost and found desk.",
     [("Why did the narrator leave a thank-you note?",
       "They were grateful that an honest person returned the wallet.",
       ["The station asked everyone to write a note.", "They wanted to complain about the train service."]),
      ("What did the narrator probably expect when they called the station?",
       "That the wallet would not be found.",
       ["That the station would pay them for the lost cash.", "That the train had been cancelled."])]),
]
PLACES_WORK = ["bakery", "library", "hospital", "design studio", "bookshop", "garden centre", "law firm"]
SUBJECTS = ["chemistry", "statistics", "physics", "economics", "biology"]


def gen_cosmos(rng: random.Random) -> Example:
    ctx, qas = rng.choice(COSMOS)
    fill = {"place": rng.choice(PLACES_WORK), "name": rng.choice(PEOPLE)[0], "subject": rng.choice(SUBJECTS),
            "town": rng.choice(TOWNS)}
    q, a, wrong = rng.choice(qas)
    q, a = q.format(**fill), a.format(**fill)
    opts = [a, *(w.format(**fill) for w in wrong)]
    rng.shuffle(opts)
    return Example({"context": ctx.format(**fill), "question": q}, a, (*opts, "None of the above choices ."))


COSMOS_T = (
    T("{context}\n\nQuestion with options to choose from: {question}"),
    T("{context}\n\nAnswer the following question: {question}"),
    T("{context}\n\nBased on the preceding passage, answer the following question {question}"),
    T("Read the following article and answer the question.\n\n{context}\n\n{question}"),
)


# --------------------------------------------------------------------------------------------------
# Closed-book QA

FACTS = [  # (trivia-style question, natural-questions style, answer)
    ("Which planet in our solar system is known as the Red Planet?", "which planet is called the red planet",
     "Mars"),
    ("Who wrote the novel 'Pride and Prejudice'?", "who is the author of pride and prejudice", "Jane Austen"),
    ("What is the chemical symbol for gold?", "what is the chemical symbol of gold", "Au"),
    ("What is the capital city of Australia?", "what is the capital of australia", "Canberra"),
    ("Who painted the 'Mona Lisa'?", "who painted the mona lisa", "Leonardo da Vinci"),
    ("What is the largest ocean on Earth?", "what is the largest ocean in the world", "the Pacific Ocean"),
    ("Which element has the atomic number 1?", "what element has atomic number 1", "hydrogen"),
    ("Who developed the general theory of relativity?", "who came up with the theory of general relativity",
     "Albert Einstein"),
    ("In which country would you find the ancient city of Petra?",
     "where is the ancient city of petra located",
     "Jordan"),
    ("What is the longest river in South America?", "what is the longest river in south america",
     "the Amazon"),
    ("Which composer wrote the opera 'The Magic Flute'?", "who composed the magic flute",
     "Wolfgang Amadeus Mozart"),
    ("How many players does a football (soccer) team have on the pitch?",
     "how many players are on a soccer team",
     "eleven"),
    ("What is the hardest natural substance?", "what is the hardest natural material on earth", "diamond"),
    ("Who was the first person to walk on the Moon?", "who was the first man to walk on the moon",
     "Neil Armstrong"),
    ("Which gas do plants absorb from the air for photosynthesis?",
     "what gas do plants take in for photosynthesis",
     "carbon dioxide"),
    ("What is the currency of Japan?", "what currency is used in japan", "the yen"),
    ("Who wrote 'Romeo and Juliet'?", "who wrote romeo and juliet", "William Shakespeare"),
    ("What is the smallest prime number?", "what is the smallest prime number", "2"),
    ("Which country hosted the 2016 Summer Olympics?", "where were the 2016 summer olympics held", "Brazil"),
    ("What is the highest mountain in the world above sea level?",
     "what is the highest mountain in the world",
     "Mount Everest"),
    ("Which organ of the human body produces insulin?", "which organ produces insulin in the body",
     "the pancreas"),
    ("In what year did the First World War begin?", "when did world war 1 start", "1914"),
    ("Who discovered penicillin?", "who discovered penicillin", "Alexander Fleming"),
    ("What is the capital of Canada?", "what is the capital city of canada", "Ottawa"),
    ("Which planet has the most prominent ring system?", "which planet is known for its rings", "Saturn"),
    ("Which language has the most native speakers in the world?",
     "what language has the most native speakers",
     "Mandarin Chinese"),
    ("Who wrote 'One Hundred Years of Solitude'?", "who wrote one hundred years of solitude",
     "Gabriel García Márquez"),
    ("At what temperature in degrees Fahrenheit does water freeze?",
     "what temperature does water freeze in fahrenheit",
     "32 degrees"),
    ("On which continent is the Sahara Desert?", "where is the sahara desert located", "Africa"),
    ("What is the largest mammal on Earth?", "what is the biggest mammal in the world", "the blue whale"),
    ("Which scientist formulated the three laws of motion?", "who came up with the three laws of motion",
     "Isaac Newton"),
    ("What is the main ingredient of guacamole?", "what is guacamole made from", "avocado"),
    ("Which city is nicknamed the 'Big Apple'?", "which city is called the big apple", "New York City"),
    ("What is the square root of 144?", "what is the square root of 144", "12"),
    ("Who was the first President of the United States?", "who was the first president of the united states",
     "George Washington"),
    ("What is the chemical formula for water?", "what is the chemical formula of water", "H2O"),
    ("In which city is the Eiffel Tower?", "where is the eiffel tower located", "Paris"),
    ("Which musical instrument usually has 88 keys?", "what instrument has 88 keys", "the piano"),
    ("What is the largest planet in our solar system?", "what is the biggest planet in the solar system",
     "Jupiter"),
    ("Who wrote the play 'A Doll's House'?", "who wrote a doll's house", "Henrik Ibsen"),
    ("Which blood cells help the body fight infection?", "which blood cells fight infection",
     "white blood cells"),
    ("What is the capital of Kenya?", "what is the capital of kenya", "Nairobi"),
    ("How many continents are there?", "how many continents are there in the world", "seven"),
    ("Who painted 'The Starry Night'?", "who painted the starry night", "Vincent van Gogh"),
    ("Which vitamin does the skin produce in sunlight?", "what vitamin do you get from the sun", "vitamin D"),
    ("In which year did the Berlin Wall fall?", "when did the berlin wall come down", "1989"),
    ("What is the name of the galaxy that contains our solar system?", "what galaxy is our solar system in",
     "the Milky Way"),
    ("Which sport is played at Wimbledon?", "what sport is played at wimbledon", "tennis"),
    ("Who composed 'The Four Seasons'?", "who composed the four seasons", "Antonio Vivaldi"),
    ("At what temperature in Celsius does water boil at sea level?",
     "what is the boiling point of water in celsius",
     "100 degrees"),
    ("What is the capital of Argentina?", "what is the capital of argentina", "Buenos Aires"),
    ("Who wrote 'Things Fall Apart'?", "who is the author of things fall apart", "Chinua Achebe"),
    ("Which metal is liquid at room temperature?", "what metal is a liquid at room temperature", "mercury"),
    ("How many sides does a hexagon have?", "how many sides does a hexagon have", "six"),
    ("Which ocean lies between Africa and Australia?", "what ocean is between africa and australia",
     "the Indian Ocean"),
    ("Who invented the telephone?", "who is credited with inventing the telephone", "Alexander Graham Bell"),
    ("What is the capital of Egypt?", "what is the capital city of egypt", "Cairo"),
    ("Which bird is the symbol of peace?", "what bird is a symbol of peace", "the dove"),
]


def gen_trivia(rng: random.Random) -> Example:
    q, _, a = rng.choice(FACTS)
    return Example({"question": q}, a, mc(rng, a, [f[2] for f in FACTS], 4))


def gen_nq(rng: random.Random) -> Example:
    _, q, a = rng.choice(FACTS)
    return Example({"question": q}, a, mc(rng, a, [f[2] for f in FACTS], 4))


TRIVIA_T = (
    T("Answer the following question. {question}"), T("Please answer this question: {question}"),
    T("Write the answer: {question}"), T("{question}"), T("Trivia question: {question}\nAnd the answer is?"),
    T("Answer this question.\n\n{question}"),
)
NQ_T = (
    T("Q: {question}?\nA:"), T("what is the answer to this question? {question}"),
    T("Answer this question:\n\n{question}?"), T("{question}?"),
    T("Answer the following question:\n\n{question}"),
)


# --------------------------------------------------------------------------------------------------
# Commonsense

STORIES = [
    ("{name} wanted to learn to play the guitar. {P} bought a used guitar from a neighbour. Every evening "
     "{p} "
     "practised for an hour. After a few months {p} could play several songs.",
     "{P} played a song at {pos} best friend's birthday party.", "{P} decided {p} had never liked music."),
    ("{name} was late for an important interview. {P} ran to the bus stop but the bus had already left. {P} "
     "called a taxi and gave the driver the address. The traffic was light.",
     "{P} arrived just in time and walked into the interview calmly.",
     "{P} decided to stay at the bus stop for the rest of the day."),
    ("{name} found a stray kitten outside {pos} apartment. It was shivering in the cold rain. {P} brought it "
     "inside and gave it a warm blanket. The kitten fell asleep on {pos} sofa.",
     "{name} decided to keep the kitten.",
     "{name} realised {p} had never seen the kitten before in {pos} life."),
    ("{name} wanted to make dinner for {pos} family. {P} looked up a recipe for vegetable soup. {P} chopped "
     "carrots, onions and potatoes. The soup simmered on the stove for an hour.",
     "Everyone said it was the best soup they had ever tasted.", "{name} had never been inside a kitchen."),
    ("{name} had a big maths test on Friday. {P} studied every night that week. On the morning of the test "
     "{p} felt calm and prepared. {P} answered every question carefully.",
     "When the grades came back, {p} had got an A.", "{name} forgot that {p} had ever taken a test."),
    ("{name} and {pos} friends drove to the beach on Saturday. They set up an umbrella and spread out their "
     "towels. {name} forgot to put on sunscreen. By the afternoon {pos} shoulders were bright red.",
     "{P} promised to always wear sunscreen from then on.",
     "{P} had the palest skin of anyone at the beach."),
    ("{name}'s dog ran away during a thunderstorm. {P} put up posters all over the neighbourhood. Two days "
     "later a neighbour called. She had found the dog hiding in her garage.",
     "{name} hugged {pos} dog and thanked the neighbour.", "{name} was sad that the dog was never found."),
    ("{name} signed up for {pos} first marathon. {P} trained for months, running longer every week. On race "
     "day it was hot and humid. {P} slowed down but kept going.",
     "{P} crossed the finish line exhausted but proud.", "{P} won the race without ever having run before."),
    ("{name} was cycling to work when {pos} tyre went flat. {P} didn't have a pump. A passing cyclist "
     "stopped to help. He lent {name} his pump and waited while {p} fixed the tyre.",
     "{name} thanked him and made it to work on time.", "{name} realised {p} had never owned a bike."),
    ("It was {name}'s mother's fiftieth birthday. {name} secretly invited all of her old friends. They hid "
     "in the living room and waited. When {pos} mother opened the door, everyone shouted surprise.",
     "{pos_cap_mother} burst into happy tears.",
     "{pos_cap_mother} was upset that nobody remembered her birthday."),
    ("{name} planted a small apple tree in {pos} garden. {P} watered it all summer. The next spring it was "
     "covered in white blossoms. By autumn the branches were heavy with fruit.",
     "{name} baked an apple pie with the first harvest.", "{name} cut the tree down before it could grow."),
    ("{name} saved {pos} pocket money for a whole year. {P} wanted to buy a telescope. When {p} finally had "
     "enough, {p} went to the shop with {pos} father. That night the sky was perfectly clear.",
     "{name} spent hours looking at the moon and the stars.",
     "{name} decided {p} was afraid of the dark sky."),
]


def gen_story(rng: random.Random) -> Example:
    ctx, right, wrong = rng.choice(STORIES)
    fill = person(rng)
    fill["pos_cap_mother"] = f"{fill['Pos']} mother"
    right, wrong = right.format(**fill), wrong.format(**fill)
    opts = [right, wrong]
    rng.shuffle(opts)
    return Example({"context": ctx.format(**fill)}, right, tuple(opts))


STORY_T = (
    T("Write the next sentence.\n\n{context}"), T("Continue the following story.\n\n{context}"),
    T("{context}\nWhat is the most logical next sentence?"), T("How does this story end?\n\n{context}"),
    T("Write the last sentence in this story.\n\n{context}"),
)

HELLASWAG = [
    ("How to clean a cast iron pan. Rinse the pan with hot water while it is still warm. Scrub off any stuck "
     "food with a stiff brush or coarse salt.",
     "Dry the pan completely with a towel, then rub a thin layer of oil over the surface.",
     ["Put the pan in the dishwasher and leave it to soak in soap overnight.",
      "Paint the pan with a bright colour so that it looks new again.",
      "Fill the pan with sand and bury it in the garden for a week."]),
    ("{Who} is standing on a ladder next to a house. {Who_p} scrapes old paint off the window frame with a "
     "putty knife.", "{Who_p} then brushes a fresh coat of white paint onto the frame.",
     ["{Who_p} jumps off the ladder into a swimming pool full of paint.",
      "{Who_p} starts playing the trumpet while the ladder floats away.",
      "{Who_p} reads a newspaper article about the history of ladders."]),
    ("{Who} is sitting at a piano in a living room. {Who_p} places both hands on the keys and looks at the "
     "sheet music.", "{Who_p} begins to play a slow melody, pausing now and then to check the notes.",
     ["{Who_p} closes the piano and starts mowing the lawn.",
      "{Who_p} throws the sheet music into the fireplace and leaves.",
      "The piano begins to play by itself while {who_p} sleeps."]),
    ("How to change a flat tire. Loosen the lug nuts slightly while the car is still on the ground. Place "
     "the jack under the car's frame near the flat tire.",
     "Raise the car until the tire is off the ground, then remove the lug nuts and the tire.",
     ["Drive the car to the beach to let air back into the tire.",
      "Remove the engine so that the car becomes lighter.",
      "Paint the tire black so that nobody notices it is flat."]),
    ("{Who} is kneeling in a garden bed holding a trowel. {Who_p} digs a small hole in the soil.",
     "{Who_p} places a seedling in the hole and presses the soil firmly around it.",
     ["{Who_p} fills the hole with orange juice and walks away.",
      "{Who_p} climbs into the hole and falls asleep.",
      "{Who_p} throws the trowel over the fence at a passing car."]),
    ("How to make cold brew coffee. Grind the coffee beans coarsely. Combine the grounds with cold water in "
     "a large jar.", "Cover the jar and let it steep in the fridge for 12 to 24 hours, then strain it.",
     ["Boil the jar on the stove for three hours until the glass cracks.",
      "Pour the mixture onto a plate and leave it in the sun to dry.",
      "Add a cup of salt and shake the jar as hard as you can."]),
    ("A group of people are standing on a frozen lake holding hockey sticks. One of them drops a puck onto "
     "the ice.", "They begin skating after the puck, passing it back and forth.",
     ["They all sit down and start knitting scarves.",
      "The lake suddenly turns into a desert.",
      "They throw their sticks into the air and walk home."]),
    ("How to wash a wool sweater. Fill a basin with lukewarm water and a little wool detergent. Submerge the "
     "sweater and gently press it into the water.",
     "Let it soak for ten minutes, then rinse it and lay it flat on a towel to dry.",
     ["Wring it out as hard as you can and put it in a hot dryer.",
      "Leave it in the basin for a month until the water evaporates.",
      "Iron the sweater while it is still under water."]),
    ("{Who} is standing in a kitchen with a bowl of eggs and a whisk. {Who_p} cracks three eggs into the "
     "bowl.", "{Who_p} whisks the eggs, adds a pinch of salt and pours them into a hot pan.",
     ["{Who_p} puts the whole bowl in the washing machine.",
      "{Who_p} gives the eggs to the cat and starts vacuuming the ceiling.",
      "{Who_p} paints the eggs blue and hangs them on the wall."]),
    ("How to tie a tie. Drape the tie around your neck with the wide end longer than the narrow end. Cross "
     "the wide end over the narrow end.",
     "Bring the wide end up through the loop around your neck and pull it down through the knot.",
     ["Cut the tie in half so that both ends are the same length.",
      "Tie the two ends to a chair and walk away.",
      "Put the tie in the freezer until it becomes stiff."]),
]
WHO = [("A man", "He"), ("A woman", "She"), ("A teenage boy", "He"), ("An older woman", "She"),
       ("A young girl", "She"), ("A man in a cap", "He")]


def gen_hellaswag(rng: random.Random) -> Example:
    ctx, right, wrong = rng.choice(HELLASWAG)
    who, who_p = rng.choice(WHO)
    fill = {"Who": who, "Who_p": who_p, "who_p": who_p.lower()}
    right = right.format(**fill)
    wrong = [w.format(**fill) for w in wrong]
    opts = [right, *wrong]
    rng.shuffle(opts)
    return Example({"context": ctx.format(**fill)}, right, tuple(opts))


HELLASWAG_T = (
    T("What happens next in this paragraph?\n\n{context}"),
    T("Continue writing the next sentence in this paragraph:\n\n{context}"),
    T("What is the most logical next event?\n\n{context}"),
    T("Write the next sentence in the following story.\n\n{context}"),
    T("{context}\n\nWhat is the most logical completion of this passage?"),
)

COPA = [
    ("The man hurt his foot.", "cause", "He dropped a heavy box on it.", "He put on new socks."),
    ("I tilted the watering can.", "effect", "Water poured onto the plants.", "The plants turned blue."),
    ("The host wanted his guests to feel welcome.", "effect", "He offered them something to drink.",
     "He locked the front door."),
    ("The bench cast a long shadow across the path.", "cause", "The sun was low in the sky.",
     "The path had just been swept."),
    ("The student forgot to do her homework.", "effect", "She made up an excuse to tell the teacher.",
     "The teacher moved her up a grade."),
    ("The driver slammed on the brakes.", "cause", "A deer ran into the road.", "The radio was too loud."),
    ("The bread went stale.", "cause", "It was left out overnight.", "It was kept in the freezer."),
    ("The crowd cheered loudly.", "cause", "The home team scored a goal.",
     "The stadium lights were switched off."),
    ("I put on my sunglasses.", "cause", "The sun was shining brightly.", "It was getting dark outside."),
    ("My phone battery died.", "effect", "I plugged the phone into the charger.", "I downloaded a new game."),
    ("The child started crying.", "cause", "She dropped her ice cream on the ground.",
     "She found a coin on the pavement."),
    ("The pond froze over.", "effect", "Children went skating on it.", "Fish jumped out of the water."),
    ("The man lost his house keys.", "effect", "He called a locksmith.", "He bought a new car."),
    ("The restaurant was crowded.", "effect", "We had to wait for a table.", "The chef went home early."),
    ("The paint on the wall was still wet.", "effect", "I did not lean against it.",
     "I hung a picture on it."),
    ("The power went out.", "effect", "We lit some candles.", "We turned on the television."),
    ("The woman felt thirsty.", "effect", "She drank a glass of water.", "She ate a bag of salty crisps."),
    ("The plant withered.", "cause", "I forgot to water it.", "I moved it to a bigger pot."),
    ("The athlete was disqualified.", "cause", "She tested positive for a banned drug.",
     "She finished the race in record time."),
    ("The streets were flooded.", "cause", "It had rained all night.", "The sun had been shining all week."),
    ("I turned up the heating.", "cause", "The house was cold.", "The windows were clean."),
    ("The baby woke up.", "cause", "The dog barked loudly.", "The moon was full."),
    ("My computer froze.", "effect", "I restarted it.", "I printed a document."),
    ("The customer complained to the manager.", "cause", "The waiter was rude to him.",
     "The food arrived quickly."),
    ("The ice cream melted.", "cause", "It was left in the sun.", "It was kept in the freezer."),
    ("The girl wanted to thank her teacher.", "effect", "She wrote her a card.", "She skipped her class."),
    ("The boy's shoes were muddy.", "cause", "He walked through a field after the rain.",
     "He polished them that morning."),
    ("The museum was closed.", "effect", "We visited the park instead.",
     "We bought tickets for the exhibition."),
]


def gen_copa(rng: random.Random) -> Example:
    premise, question, right, wrong = rng.choice(COPA)
    opts = [right, wrong]
    rng.shuffle(opts)
    return Example({"premise": premise, "question": question}, right, tuple(opts))


COPA_T = (
    T("Premise: {premise}\nWhat is the {question}?"), T("{premise}\n\nWhat was the {question} of this?"),
    T("Choose the most plausible {question}.\n{premise}"),
    T("Here is a premise: {premise}\n\nWhat is the {question}?"),
)


# --------------------------------------------------------------------------------------------------
# Sentiment

MOVIES = ["The Quiet Harbour", "Midnight in Calder", "Paper Lanterns", "The Last Orchard", "Iron Meridian",
          "A Winter for Wolves", "Glass Houses", "The Cartographer's Daughter", "Northbound",
          "Silent Frequencies"]
COMPANIONS = ["my partner", "a couple of friends", "my teenage kids", "my parents", "my flatmate"]
MOVIE = {
    "open": ['I watched "{title}" last weekend with {comp}.',
             'I had high hopes for "{title}" after the trailer.',
             '"{title}" is the new film from director {director}.',
             'I finally got around to seeing "{title}" on a rainy Sunday.',
             'A friend recommended "{title}", so I gave it a try.'],
    "pos": [
        "{actor} gives a wonderful, understated performance in the lead.",
        "The cast is excellent, especially {actor}, who makes every scene feel real.",
        "The story moves at a perfect pace and kept me guessing until the very end.",
        "The script is clever, funny and surprisingly moving.",
        "It takes a simple premise and builds something genuinely gripping out of it.",
        "The cinematography is gorgeous; some shots look like paintings.",
        "The score is beautiful and never overwhelms the quieter moments.",
        "The ending is perfect and stayed with me for days.",
        "The dialogue feels natural, and the characters are easy to care about.",
    ],
    "neg": [
        "{actor} looks bored in the lead and delivers every line the same way.",
        "The acting is wooden, and none of the characters felt believable.",
        "The plot is full of holes and the twist can be seen coming from a mile away.",
        "The story drags badly in the middle and never recovers.",
        "The script is a mess of cliches we have all seen a hundred times.",
        "The camera work is so shaky that I felt sick by the second act.",
        "The music is loud and intrusive, telling you what to feel in every scene.",
        "The ending is rushed and makes no sense at all.",
        "The dialogue is painfully clunky, and the jokes fall flat.",
    ],
    "close_pos": ["Highly recommended.", "I will definitely watch it again.",
                  "{score}/10, one of the best films I have seen this year.",
                  "Go and see it on the big screen."],
    "close_neg": ["Save your money.", "I wanted my two hours back.", "{score}/10, and I am being generous.",
                  "Skip this one."],
}
RESTAURANTS = ["The Copper Pot", "Casa Lumi", "Blue Heron Diner", "Saffron Street", "Mama Rosa's",
               "The Golden Wok", "Harbour Grill", "Little Lisbon"]
YELP = {
    "open": ["Came here for {meal} with {comp} on a {day} night.",
             "We stopped by {name} after a long day of shopping.",
             "I have been to {name} three times now.",
             "Finally tried {name} after hearing about it for months.",
             "Ordered takeaway from {name} last {day}."],
    "pos": [
        "The {dish} was perfectly cooked and full of flavour.",
        "Our server was friendly and checked on us often.",
        "Portions are generous and the prices are very fair.", "The place is cosy and spotlessly clean.",
        "Everything came out hot and fast, even though it was busy.",
        "The {dish} alone is worth the trip.",
        "The staff remembered us from last time, which was a nice touch.",
    ],
    "neg": [
        "The {dish} was cold and tasted like it had been reheated.", "We waited forty minutes just to order.",
        "Our server forgot half of our order and never apologised.", "Way overpriced for what you get.",
        "The tables were sticky and the floor was dirty.", "The {dish} was so salty I could not finish it.",
        "The music was so loud we could not hear each other.",
    ],
    "close_pos": ["Will definitely be back!", "Five stars, no question.", "Highly recommend the {dish}."],
    "close_neg": ["Will not be returning.", "One star, and that is generous.", "Avoid."],
}
DISHES = ["lasagna", "pad thai", "burger", "grilled octopus", "ramen", "fish tacos", "carbonara", "curry"]
DIRECTORS = ["Lena Hartmann", "Tomas Ruiz", "Akiko Mori", "Daniel Achterberg", "Sofia Marchetti"]
ACTORS = ["Clara Voss", "Idris Kamara", "Jonah Fielding", "Marta Sandoval", "Theo Lindgren", "Amara Osei"]


def review(rng: random.Random, pools: dict[str, list[str]], fill: dict[str, str]) -> tuple[str, str]:
    """Assemble a review from phrase pools: (text, label); one polarity, sometimes one contrary line."""
    label = rng.choice(["positive", "negative"])
    same = "pos" if label == "positive" else "neg"
    other = "neg" if same == "pos" else "pos"
    body = rng.sample(pools[same], rng.randint(2, 4))
    if rng.random() < 0.35:
        body.insert(rng.randint(0, len(body)), rng.choice(["Admittedly, ", "That said, ", "To be fair, "])
                    + lcfirst(rng.choice(pools[other])))
    fill = {**fill, "score": str(rng.randint(7, 10) if same == "pos" else rng.randint(1, 4))}
    text = " ".join([rng.choice(pools["open"]), *body, rng.choice(pools["close_" + same])])
    return text.format(**fill), label


def lcfirst(s: str) -> str:
    return s[:1].lower() + s[1:] if not s[:2].isupper() and not s.startswith(("{", '"')) else s


def gen_imdb(rng: random.Random) -> Example:
    fill = {"title": rng.choice(MOVIES), "comp": rng.choice(COMPANIONS), "director": rng.choice(DIRECTORS),
            "actor": rng.choice(ACTORS)}
    text, label = review(rng, MOVIE, fill)
    return Example({"text": text, "label": label}, label, ("negative", "positive"))


def gen_yelp(rng: random.Random) -> Example:
    fill = {"name": rng.choice(RESTAURANTS), "comp": rng.choice(COMPANIONS),
            "meal": rng.choice(["dinner", "lunch"]),
            "day": rng.choice(DAYS), "dish": rng.choice(DISHES)}
    text, label = review(rng, YELP, fill)
    return Example({"text": text, "label": label}, label, ("negative", "positive"))


SST_POS = ["a gorgeous , witty , seductive movie", "one of the most purely enjoyable films of the year",
           "a smart , funny look at growing up", "the performances are uniformly excellent",
           "a moving and beautifully shot drama", "an utterly charming comedy",
           "warm , funny and deeply felt",
           "a triumph of imagination", "a thoughtful , tender love story",
           "the kind of movie you want to see twice"]
SST_NEG = ["a dull , lifeless exercise in nostalgia", "the plot is paper-thin and the jokes fall flat",
           "an overlong , tedious mess", "too clumsy to be scary and too silly to be taken seriously",
           "a film that seems to have been assembled from spare parts", "it never finds a reason to exist",
           "lazy , predictable and instantly forgettable", "the characters are as thin as the plot",
           "a sluggish , joyless sequel", "nothing more than a feature-length advertisement"]


def gen_sst2(rng: random.Random) -> Example:
    label = rng.choice(["positive", "negative"])
    same, other = (SST_POS, SST_NEG) if label == "positive" else (SST_NEG, SST_POS)
    form = rng.randint(0, 3)
    if form == 0:
        text = rng.choice(same)
    elif form == 1:
        a, b = rng.sample(same, 2)
        text = f"{a} , and {b}"
    elif form == 2:
        text = f"even though {rng.choice(other)} , {rng.choice(same)}"
    else:
        text = f"{rng.choice(same)} {rng.choice(['.', '!', '...'])}"
    return Example({"text": text, "label": label}, label, ("negative", "positive"))


IMDB_T = (
    T("{text}\nDid this review think positively or negatively of the movie?"),
    T("{text}\n\nWhat is the sentiment of this review?"),
    T("{text}\nIs the sentiment of this review positive or negative?"),
    T("How would one describe the sentiment of this movie review?\n{text}"),
    T("Write a {label} movie review.", "{text}", opt=False),
)
YELP_T = (
    T("{text}\nWas this review given positively or negatively?"),
    T("{text}\n\nChoose the sentiment of this review?"),
    T("How would one describe the sentiment of this review?\n{text}"),
    T("{text}\nIs this review positive or negative?"),
    T("Write a {label} yelp review.", "{text}", opt=False),
)
SST_T = (
    T('Sentence: "{text}"\nWould a movie reviewer say this sentence was positive or negative?'),
    T('"{text}"\nHow would the sentiment of this sentence be perceived?'),
    T("Is the sentiment of the following sentence positive or negative?\n{text}"),
    T('Short movie review: {text}\nDid the critic think positively or negatively of the movie?'),
    T("Generate a short movie review that has {label} sentiment.", "{text}", opt=False),
)


# --------------------------------------------------------------------------------------------------
# News: topic classification and summarisation share one article generator

TEAMS = ["Rovena City", "Port Alden Rovers", "Norvik FC", "Castelbrun United", "Ebbington Athletic",
         "Valmonte Sporting", "Kirrin Bay Wanderers", "Ashgrove Town"]
COUNTRIES = ["Portugal", "Norway", "Canada", "Kenya", "Chile", "Poland", "Ireland", "Japan", "Peru", "Ghana"]
AGREEMENTS = [("build a high-speed rail link between their capitals", "rail link"),
              ("share water from the river that forms their border", "water-sharing deal"),
              ("cut tariffs on farm goods over five years", "farm trade deal"),
              ("cooperate on fighting wildfires along their border", "wildfire pact")]
INVENTIONS = [("battery", "charge an electric car in under ten minutes"),
              ("water filter", "remove microplastics from drinking water"),
              ("crop strain", "survive long droughts without losing yield"),
              ("sensor", "detect early signs of disease in a drop of blood"),
              ("solar panel coating", "keep panels free of dust without cleaning"),
              ("robot", "sort recycling twice as fast as human workers")]


def news(rng: random.Random) -> dict:
    """A fictional news story: category, headline, lead, body sentences and highlights."""
    day = rng.choice(DAYS)
    kind = rng.choice(["business", "sports", "science", "world", "weather"])
    if kind == "business":
        co, pct, up = rng.choice(COMPANIES), rng.randint(3, 41), rng.random() < 0.5
        move, reason = ("rise", "strong demand in Asia") if up else ("fall", "higher energy costs")
        ceo = full_name(rng)
        head = f"{co} profit {'rises' if up else 'falls'} {pct}% on {reason}"
        lead = f"{co} reported a {pct} percent {move} in quarterly profit on {day}, citing {reason}."
        body = [f'"{"We are pleased with" if up else "We are disappointed by"} these results," chief '
                f'executive '
                f"{ceo} said in a statement.",
                f"Shares in the company {'rose' if up else 'fell'} {rng.randint(2, 9)} percent in early "
                f"trading.",
                f"Analysts had expected a {'smaller rise' if up else 'smaller drop'} after a weak first "
                "half.",
                f"The company employs about {rng.randint(2, 60)},000 people and runs {rng.randint(3, 20)} "
                f"factories in {rng.choice(REGIONS)}.",
                f"It said it expects sales to {'keep growing' if up else 'remain flat'} next year.",
                f"{ceo} also announced plans to "
                f"{'open a new plant' if up else 'cut costs by closing two sites'}."]
        hl = [lead, f"Shares {'rose' if up else 'fell'} after the announcement.",
              f"The company expects sales to {'keep growing' if up else 'remain flat'} next year."]
        cat = "Business"
    elif kind == "sports":
        t1, t2 = rng.sample(TEAMS, 2)
        s1, s2 = rng.randint(2, 5), rng.randint(0, 1)
        player, coach = full_name(rng), full_name(rng)
        outcome = rng.choice(["reach the cup final", "go top of the league", "end a five-game losing run"])
        head = f"{t1} beat {t2} to {outcome}"
        lead = f"{t1} beat {t2} {s1}-{s2} on {day} to {outcome}."
        body = [f"{player} scored twice in the second half after a goalless first 45 minutes.",
                f"{t2} had a goal ruled out for offside shortly before the break.",
                f'"The players showed great character today," said {t1} coach {coach}.',
                f"The win was watched by a crowd of {rng.randint(8, 45)},000.",
                f"{t2} have now gone {rng.randint(3, 8)} games without a win.",
                f"{t1} face {rng.choice([t for t in TEAMS if t not in (t1, t2)])} next week."]
        hl = [lead, f"{player} scored twice in the second half.", f"{t2} have not won in several games."]
        cat = "Sports"
    elif kind == "science":
        thing, can = rng.choice(INVENTIONS)
        town, lead_r = rng.choice(TOWNS), full_name(rng)
        head = f"New {thing} can {can}, researchers say"
        lead = (f"Researchers at the University of {town} say they have developed a {thing} that can {can}, "
                f"in a study published on {day}.")
        body = [f"The team, led by {lead_r}, spent {rng.randint(2, 7)} years on the project.",
                f"In laboratory tests the {thing} worked in {rng.randint(80, 99)} percent of cases.",
                "Independent experts called the results promising but said larger trials were needed.",
                f'"This could make a real difference within a decade," {lead_r} said.',
                f"The work was funded by a {rng.randint(2, 30)} million euro research grant.",
                f"The team plans to test the {thing} outside the laboratory next year."]
        hl = [lead, "Experts say larger trials are needed.", "Field tests are planned for next year."]
        cat = "Science/Tech"
    elif kind == "world":
        c1, c2 = rng.sample(COUNTRIES, 2)
        agree, short = rng.choice(AGREEMENTS)
        months, minister = rng.randint(6, 30), full_name(rng)
        head = f"{c1} and {c2} sign {short}"
        lead = f"{c1} and {c2} agreed on {day} to {agree}, ending {months} months of talks."
        body = [f"The agreement was signed at a ceremony in {rng.choice(TOWNS)}.",
                f'"This is a good day for both our peoples," foreign minister {minister} told reporters.',
                "Opposition politicians in both countries criticised the deal as too costly.",
                f"The plan still needs to be approved by the parliaments of {c1} and {c2}.",
                f"Officials said work could begin within {rng.randint(1, 4)} years.",
                "Neighbouring countries have been invited to join at a later stage."]
        hl = [lead, "The deal still needs approval from both parliaments.", "Critics say it is too costly."]
        cat = "World"
    else:
        region, n = rng.choice(REGIONS), rng.randint(3, 90) * 100
        head = f"Floods force {n} from their homes in {region}"
        lead = (f"Heavy rain caused flooding across {region} on {day}, forcing {n} people to leave "
                "their homes.")
        body = [f"Rivers burst their banks in at least {rng.randint(3, 15)} towns.",
                f"Emergency services rescued dozens of people from the roofs of cars in {rng.choice(TOWNS)}.",
                "Forecasters warned that more rain was expected over the weekend.",
                f"Schools in the area will stay closed until {rng.choice(DAYS)}.",
                "Local officials said the damage would cost millions to repair.",
                "It is the worst flooding in the region for more than thirty years."]
        hl = [lead, "More rain is expected over the weekend.", "Schools in the area remain closed."]
        cat = "World"
    rng.shuffle(body)
    return {"category": cat, "headline": head, "lead": lead, "body": body, "highlights": hl}


AG_OPTS = ("World", "Sports", "Business", "Science/Tech")


def gen_ag_news(rng: random.Random) -> Example:
    n = news(rng)
    text = " ".join([n["lead"], *n["body"][: rng.randint(0, 1)]])
    return Example({"title": n["headline"], "text": text}, n["category"], AG_OPTS)


AG_T = (
    T("{title} {text}\n\nWhat is this text about?"), T("{text}\nWhich topic is this article about?"),
    T("Select your answer: Which is this about?\n\n{text}"),
    T("{title}\n\n{text}\n\nWhat best summarizes the content of the above article?"),
    T("Write a title for this article:\n\n{text}", "{title}", opt=False),
)


def gen_cnn(rng: random.Random) -> Example:
    n = news(rng)
    body = n["body"]
    cut = rng.randint(2, 4)
    art = f"{n['lead']} {' '.join(body[:cut])}\n\n{' '.join(body[cut:])}"
    flat = " ".join(n["highlights"])
    others = [" ".join(news(rng)["highlights"]) for _ in range(2)]
    return Example({"article": art}, "\n".join(n["highlights"]), mc(rng, flat, others, 3), opt_answer=flat)


CNN_T = (
    T("{article}\n\nWrite highlights for this article."), T("Summarize this article:\n\n{article}"),
    T("Write some highlights for the following article:\n\n{article}\n\nHighlights:"),
    T("{article}\n\nWhat are highlight points for this article?"),
    T("Write an article based on these highlights. {highlights}", "{article}", opt=False),
)


def gen_cnn_fields(rng: random.Random) -> Example:
    ex = gen_cnn(rng)
    return Example({**ex.fields, "highlights": ex.answer.replace("\n", " ")}, ex.answer, ex.options,
                   ex.opt_answer)


def gen_xsum(rng: random.Random) -> Example:
    n = news(rng)
    text = " ".join(n["body"][: rng.randint(3, 6)])
    others = [news(rng)["lead"] for _ in range(3)]
    return Example({"text": text}, n["lead"], mc(rng, n["lead"], others, 4))


XSUM_T = (
    T("{text}\n\nWhat is a summary of this text?"),
    T("Article: {text}\n\nA summary of the above article is?"),
    T("Summarize this article in one sentence.\n\n{text}"),
    T("Write an article based on this summary:\n\n{summary}", "{text}", opt=False),
)


def gen_xsum_fields(rng: random.Random) -> Example:
    ex = gen_xsum(rng)
    return Example({**ex.fields, "summary": ex.answer}, ex.answer, ex.options)


def gen_gigaword(rng: random.Random) -> Example:
    n = news(rng)
    head = n["headline"].lower()
    others = [news(rng)["headline"].lower() for _ in range(3)]
    text = n["lead"].lower() if rng.random() < 0.5 else n["lead"]
    return Example({"text": text}, head, mc(rng, head, others, 4))


GIGA_T = (
    T("Write a short summary for this text: {text}"),
    T("{text}\n\nWhat is a very short summary of the above text?"),
    T("Generate a short summary this sentence:\n{text}"), T("{text}\nWhat is a good title for this?"),
    T("Briefly summarize this sentence: {text}"),
)


# --------------------------------------------------------------------------------------------------
# Translation

PHRASES = [  # (en, de, fr, es)
    ("The train to Berlin leaves at eight o'clock.", "Der Zug nach Berlin fährt um acht Uhr ab.",
     "Le train pour Berlin part à huit heures.", "El tren a Berlín sale a las ocho."),
    ("My sister works as a nurse in a large hospital.",
     "Meine Schwester arbeitet als Krankenschwester in einem großen Krankenhaus.",
     "Ma sœur travaille comme infirmière dans un grand hôpital.",
     "Mi hermana trabaja como enfermera en un hospital grande."),
    ("We need to reduce energy consumption in our homes.",
     "Wir müssen den Energieverbrauch in unseren Häusern senken.",
     "Nous devons réduire la consommation d'énergie dans nos maisons.",
     "Debemos reducir el consumo de energía en nuestros hogares."),
    ("The committee will publish its report next week.",
     "Der Ausschuss wird seinen Bericht nächste Woche veröffentlichen.",
     "Le comité publiera son rapport la semaine prochaine.",
     "El comité publicará su informe la próxima semana."),
    ("It rained all day, so we stayed at home.",
     "Es hat den ganzen Tag geregnet, also sind wir zu Hause geblieben.",
     "Il a plu toute la journée, alors nous sommes restés à la maison.",
     "Llovió todo el día, así que nos quedamos en casa."),
    ("Could you tell me where the nearest pharmacy is?", "Können Sie mir sagen, wo die nächste Apotheke ist?",
     "Pourriez-vous me dire où se trouve la pharmacie la plus proche ?",
     "¿Podría decirme dónde está la farmacia más cercana?"),
    ("The museum is closed on Mondays.", "Das Museum ist montags geschlossen.",
     "Le musée est fermé le lundi.",
     "El museo está cerrado los lunes."),
    ("Prices have risen sharply over the last year.", "Die Preise sind im letzten Jahr stark gestiegen.",
     "Les prix ont fortement augmenté au cours de l'année dernière.",
     "Los precios han subido mucho durante el último año."),
    ("The children are playing in the garden.", "Die Kinder spielen im Garten.",
     "Les enfants jouent dans le jardin.",
     "Los niños están jugando en el jardín."),
    ("I have been learning Spanish for two years.", "Ich lerne seit zwei Jahren Spanisch.",
     "J'apprends l'espagnol depuis deux ans.", "Llevo dos años aprendiendo español."),
    ("The government has announced new measures to support small businesses.",
     "Die Regierung hat neue Maßnahmen zur Unterstützung kleiner Unternehmen angekündigt.",
     "Le gouvernement a annoncé de nouvelles mesures pour soutenir les petites entreprises.",
     "El gobierno ha anunciado nuevas medidas para apoyar a las pequeñas empresas."),
    ("This book was written more than a hundred years ago.",
     "Dieses Buch wurde vor mehr als hundert Jahren geschrieben.",
     "Ce livre a été écrit il y a plus de cent ans.", "Este libro fue escrito hace más de cien años."),
    ("We would like to book a table for four people.",
     "Wir möchten einen Tisch für vier Personen reservieren.",
     "Nous voudrions réserver une table pour quatre personnes.",
     "Quisiéramos reservar una mesa para cuatro personas."),
    ("The meeting has been postponed until Thursday.", "Die Sitzung wurde auf Donnerstag verschoben.",
     "La réunion a été reportée à jeudi.", "La reunión se ha aplazado hasta el jueves."),
    ("Many young people cannot afford to buy a flat.",
     "Viele junge Menschen können sich keine Wohnung leisten.",
     "Beaucoup de jeunes n'ont pas les moyens d'acheter un appartement.",
     "Muchos jóvenes no pueden permitirse comprar un piso."),
    ("The river flows through the centre of the city.", "Der Fluss fließt durch das Stadtzentrum.",
     "Le fleuve traverse le centre de la ville.", "El río atraviesa el centro de la ciudad."),
    ("Please switch off your mobile phones during the performance.",
     "Bitte schalten Sie während der Vorstellung Ihre Mobiltelefone aus.",
     "Veuillez éteindre vos téléphones portables pendant le spectacle.",
     "Por favor, apaguen sus teléfonos móviles durante la función."),
    ("The results of the study surprised the researchers.",
     "Die Ergebnisse der Studie überraschten die Forscher.",
     "Les résultats de l'étude ont surpris les chercheurs.",
     "Los resultados del estudio sorprendieron a los investigadores."),
    ("He forgot his umbrella on the bus.", "Er hat seinen Regenschirm im Bus vergessen.",
     "Il a oublié son parapluie dans le bus.", "Olvidó su paraguas en el autobús."),
    ("Parliament approved the budget by a large majority.",
     "Das Parlament hat den Haushalt mit großer Mehrheit gebilligt.",
     "Le Parlement a approuvé le budget à une large majorité.",
     "El Parlamento aprobó el presupuesto por amplia mayoría."),
    ("The new bridge will open to traffic in the spring.",
     "Die neue Brücke wird im Frühjahr für den Verkehr freigegeben.",
     "Le nouveau pont sera ouvert à la circulation au printemps.",
     "El nuevo puente se abrirá al tráfico en primavera."),
    ("She drinks a cup of coffee every morning.", "Sie trinkt jeden Morgen eine Tasse Kaffee.",
     "Elle boit une tasse de café tous les matins.", "Ella toma una taza de café todas las mañanas."),
    ("The hotel is only five minutes from the beach.", "Das Hotel ist nur fünf Minuten vom Strand entfernt.",
     "L'hôtel est à seulement cinq minutes de la plage.", "El hotel está a solo cinco minutos de la playa."),
    ("Farmers are worried about the lack of rain.", "Die Landwirte sind besorgt über den fehlenden Regen.",
     "Les agriculteurs s'inquiètent du manque de pluie.",
     "Los agricultores están preocupados por la falta de lluvia."),
    ("Our flight was delayed by three hours.", "Unser Flug hatte drei Stunden Verspätung.",
     "Notre vol a été retardé de trois heures.", "Nuestro vuelo se retrasó tres horas."),
    ("The company plans to hire two hundred new employees.",
     "Das Unternehmen plant, zweihundert neue Mitarbeiter einzustellen.",
     "L'entreprise prévoit d'embaucher deux cents nouveaux employés.",
     "La empresa planea contratar a doscientos nuevos empleados."),
    ("I don't understand why the shop is closed today.",
     "Ich verstehe nicht, warum der Laden heute geschlossen ist.",
     "Je ne comprends pas pourquoi le magasin est fermé aujourd'hui.",
     "No entiendo por qué la tienda está cerrada hoy."),
    ("The old town is full of narrow streets and small cafés.",
     "Die Altstadt ist voller enger Gassen und kleiner Cafés.",
     "La vieille ville est pleine de ruelles étroites et de petits cafés.",
     "El casco antiguo está lleno de calles estrechas y pequeños cafés."),
    ("Education is the key to a better future.", "Bildung ist der Schlüssel zu einer besseren Zukunft.",
     "L'éducation est la clé d'un avenir meilleur.", "La educación es la clave de un futuro mejor."),
    ("The doctor advised him to get more sleep.", "Der Arzt riet ihm, mehr zu schlafen.",
     "Le médecin lui a conseillé de dormir davantage.", "El médico le aconsejó dormir más."),
    ("The negotiations will continue tomorrow morning.", "Die Verhandlungen werden morgen früh fortgesetzt.",
     "Les négociations reprendront demain matin.", "Las negociaciones continuarán mañana por la mañana."),
    ("We walked along the coast until sunset.",
     "Wir sind bis zum Sonnenuntergang an der Küste entlanggelaufen.",
     "Nous avons marché le long de la côte jusqu'au coucher du soleil.",
     "Caminamos por la costa hasta la puesta del sol."),
    ("The library has more than two million books.", "Die Bibliothek hat mehr als zwei Millionen Bücher.",
     "La bibliothèque possède plus de deux millions de livres.",
     "La biblioteca tiene más de dos millones de libros."),
    ("Everyone has the right to freedom of expression.", "Jeder hat das Recht auf freie Meinungsäußerung.",
     "Tout le monde a droit à la liberté d'expression.",
     "Todo el mundo tiene derecho a la libertad de expresión."),
    ("The match was cancelled because of the storm.", "Das Spiel wurde wegen des Sturms abgesagt.",
     "Le match a été annulé à cause de la tempête.", "El partido fue cancelado a causa de la tormenta."),
    ("My grandfather grew up in a small village in the mountains.",
     "Mein Großvater ist in einem kleinen Dorf in den Bergen aufgewachsen.",
     "Mon grand-père a grandi dans un petit village de montagne.",
     "Mi abuelo creció en un pueblo pequeño en las montañas."),
]
LANGS = {"en": (0, "English"), "de": (1, "German"), "fr": (2, "French"), "es": (3, "Spanish")}


def make_translate(other: str) -> Callable[[random.Random], Example]:
    def gen(rng: random.Random) -> Example:
        src, tgt = ("en", other) if rng.random() < 0.5 else (other, "en")
        k = rng.choice([1, 1, 1, 2, 2, 3])
        rows = rng.sample(PHRASES, k)
        si, ti = LANGS[src][0], LANGS[tgt][0]
        answer = " ".join(r[ti] for r in rows)
        wrong = [" ".join(r[ti] for r in rng.sample(PHRASES, k)) for _ in range(3)]
        return Example({"src_text": " ".join(r[si] for r in rows), "tgt": LANGS[tgt][1],
                        "src": LANGS[src][1]},
                       answer, mc(rng, answer, wrong, 3))
    return gen


TRANSLATE_T = (
    T("Translate the following sentence to {tgt}:\n{src_text}"), T("{src_text}\n\nTranslate to {tgt}"),
    T('Translate "{src_text}" to {tgt}?'), T('How is "{src_text}" said in {tgt}?'),
    T("Translate to {tgt}:\n\n{src_text}"), T("{src} text: {src_text}\n\n{tgt} translation:"),
)


# --------------------------------------------------------------------------------------------------
# Math

def gen_gsm8k(rng: random.Random) -> Example:
    p = person(rng)
    n, P, pos = p["name"], p["P"], p["pos"]
    kind = rng.randint(0, 8)
    if kind == 0:
        a, b = rng.randint(3, 12), rng.randint(6, 24)
        c = rng.randint(1, a * b - 1)
        ans = a * b - c
        q = (f"{n} buys {a} packs of pencils. Each pack has {b} pencils. {P} gives {c} pencils to {pos} "
             f"classmates. How many pencils does {p['p']} have left?")
        sol = (f"{n} buys {a} * {b} = {a * b} pencils. After giving away {c}, {p['p']} has "
               f"{a * b} - {c} = {ans} pencils left.")
    elif kind == 1:
        a, price, d = rng.randint(20, 150), rng.randint(2, 6), rng.randint(2, 7)
        ans = a * price * d
        q = (f"A bakery makes {a} loaves of bread each day and sells each loaf for ${price}. How much money "
             f"does "
             f"it make in {d} days if it sells every loaf?")
        sol = (f"Each day it makes {a} * {price} = ${a * price}. "
               f"In {d} days it makes {a * price} * {d} = ${ans}.")
    elif kind == 2:
        a = rng.randint(10, 60)
        total = 3 * a + rng.randint(20, 200)
        ans = total - 3 * a
        q = (f"{n} is reading a {total}-page book. {P} read {a} pages on Monday and twice as many on "
             f"Tuesday. "
             f"How many pages does {p['p']} still have to read?")
        sol = (f"On Tuesday {p['p']} read 2 * {a} = {2 * a} pages, so {a} + {2 * a} = {3 * a} pages in "
               f"total. "
               f"{P} still has {total} - {3 * a} = {ans} pages to read.")
    elif kind == 3:
        s, h, s2, h2 = rng.randint(30, 80), rng.randint(2, 5), rng.randint(30, 80), rng.randint(1, 4)
        ans = s * h + s2 * h2
        q = (f"A train travels at {s} miles per hour for {h} hours, then at {s2} miles per hour for {h2} "
             f"hours. "
             "How many miles does it travel in total?")
        sol = (f"First it travels {s} * {h} = {s * h} miles, then {s2} * {h2} = {s2 * h2} miles. "
               f"In total it travels {s * h} + {s2 * h2} = {ans} miles.")
    elif kind == 4:
        a, price, shoes = rng.randint(2, 5), rng.randint(8, 25), rng.randint(30, 90)
        cost = a * price + shoes
        bill = 100 * math.ceil((cost + 1) / 100)
        ans = bill - cost
        q = (f"{n} buys {a} shirts at ${price} each and a pair of shoes for ${shoes}. {P} pays with ${bill}. "
             f"How much change does {p['p']} get?")
        sol = (f"The shirts cost {a} * {price} = ${a * price}, so the total is {a * price} + {shoes} = "
               f"${cost}. "
               f"The change is {bill} - {cost} = ${ans}.")
    elif kind == 5:
        a, b = rng.randint(5, 15), rng.randint(2, 8)
        ans = 3 * (a + b)
        q = (f"{n} is {a} years old. {p['Pos']} brother is {b} years older than {p['obj']}, and their mother "
             f"is "
             "three times as old as the brother. How old is their mother?")
        sol = f"The brother is {a} + {b} = {a + b} years old. The mother is 3 * {a + b} = {ans} years old."
    elif kind == 6:
        a, w = rng.randint(5, 30), rng.randint(4, 20)
        s = rng.randint(10, a * w - 1)
        ans = a * w - s
        q = (f"{n} saves ${a} every week. After {w} weeks {p['p']} spends ${s} on a bike. How much money "
             f"does "
             f"{p['p']} have left?")
        sol = (f"{P} saves {a} * {w} = ${a * w}. "
               f"After buying the bike {p['p']} has {a * w} - {s} = ${ans} left.")
    elif kind == 7:
        price, d = rng.randrange(40, 301, 20), rng.choice([10, 20, 25, 50])
        off = price * d // 100
        ans = price - off
        q = f"A jacket costs ${price}. It is on sale for {d}% off. What is the sale price?"
        sol = f"The discount is {price} * {d} / 100 = ${off}. The sale price is {price} - {off} = ${ans}."
    else:
        length, width, c = rng.randint(5, 30), rng.randint(3, 20), rng.randint(2, 9)
        per = 2 * (length + width)
        ans = per * c
        q = (f"A rectangular garden is {length} meters long and {width} meters wide. Fencing costs ${c} per "
             "meter. How much does it cost to fence the whole garden?")
        sol = (f"The perimeter is 2 * ({length} + {width}) = {per} meters. The fence costs {per} * {c} = "
               f"${ans}.")
    return Example({"question": q}, f"{sol} The answer is {ans}.", num_options(rng, ans))


GSM_T = (
    T("{question}"), T("Q: {question}\nA:"), T("Solve this math problem step by step.\n{question}"),
    T("{question}\nLet's think step by step."), T("Answer the following question: {question}"),
)


def gen_math_dataset(rng: random.Random) -> Example:
    kind = rng.randint(0, 6)
    if kind == 0:
        v, x, a, b = rng.choice("xyzkdgt"), rng.randint(-12, 12), rng.randint(2, 15), rng.randint(-60, 60)
        c = a * x + b
        q, ans = f"Solve {a}*{v} + {b} = {c} for {v}.".replace("+ -", "- "), x
    elif kind == 1:
        a, b, c = rng.randint(10, 999), rng.randint(10, 999), rng.randint(10, 999)
        q, ans = f"What is {a} + {b} - {c}?", a + b - c
    elif kind == 2:
        a, b = rng.randint(11, 99), rng.randint(3, 49)
        q, ans = f"Calculate {a} * {b}.", a * b
    elif kind == 3:
        g = rng.randint(2, 30)
        a, b = g * rng.randint(2, 20), g * rng.randint(2, 20)
        q, ans = f"What is the greatest common divisor of {a} and {b}?", math.gcd(a, b)
    elif kind == 4:
        a, b = rng.randint(100, 5000), rng.randint(3, 60)
        q, ans = f"What is the remainder when {a} is divided by {b}?", a % b
    elif kind == 5:
        a, b, c, v = rng.randint(1, 9), rng.randint(1, 20), rng.randint(-20, 20), rng.randint(-5, 6)
        q = f"Let f(x) = {a}*x**2 - {b}*x + {c}. What is f({v})?".replace("+ -", "- ")
        ans = a * v * v - b * v + c
    else:
        num = rng.randint(1000, 99999)
        if num % 100 == 50:
            num += 1
        q, ans = f"Round {num} to the nearest hundred.", (num + 50) // 100 * 100
    return Example({"question": q}, str(ans), num_options(rng, ans) if ans >= 0 else
                   tuple(str(ans + d) for d in (0, 2, -3, 7)))


MATH_T = (
    T("{question}\nSolve this problem."), T("Math Problem\n{question}"), T("{question}\nWhat is the answer?"),
    T("Write down the solution for this math problem: {question}"),
    T("Problem: {question}\nAnd the answer is..."),
)


# --------------------------------------------------------------------------------------------------
# Code

@dataclass(frozen=True)
class Func:
    """A small Python function: description, name choices, code ({fn}, {arg}, {v}), tests, arg/var names."""

    desc: str
    names: tuple[str, ...]
    code: str
    tests: tuple[tuple[str, str], ...]
    args: tuple[str, ...]
    loop_vars: tuple[str, ...] = ("x",)


LIST_ARGS = ("values", "nums", "numbers", "xs")
STR_ARGS = ("text", "s", "sentence", "string")
INT_ARGS = ("n", "num")
FUNCS = [
    Func("Return the sum of the even numbers in a list.", ("sum_even", "even_sum", "total_of_evens"), """\
def {fn}({arg}):
    total = 0
    for {v} in {arg}:
        if {v} % 2 == 0:
            total += {v}
    return total""", (("[1, 2, 3, 4]", "6"), ("[7, 9]", "0")), LIST_ARGS, ("x", "n", "value")),
    Func("Reverse the order of the words in a sentence.", ("reverse_words", "flip_words"), """\
def {fn}({arg}):
    return " ".join(reversed({arg}.split()))""",
         (('"hello big world"', '"world big hello"'), ('"a b"', '"b a"')), STR_ARGS),
    Func("Check whether a number is prime.", ("is_prime", "check_prime", "prime"), """\
def {fn}({arg}):
    if {arg} < 2:
        return False
    {v} = 2
    while {v} * {v} <= {arg}:
        if {arg} % {v} == 0:
            return False
        {v} += 1
    return True""", (("13", "True"), ("15", "False")), INT_ARGS, ("d", "i", "divisor")),
    Func("Count the vowels in a string.", ("count_vowels", "vowel_count", "num_vowels"), """\
def {fn}({arg}):
    return sum(1 for {v} in {arg}.lower() if {v} in "aeiou")""", (('"Programming"', "3"), ('"sky"', "0")),
         STR_ARGS, ("ch", "c", "letter")),
    Func("Compute the factorial of a non-negative integer.", ("factorial", "fact", "compute_factorial"), """\
def {fn}({arg}):
    result = 1
    for {v} in range(2, {arg} + 1):
        result *= {v}
    return result""", (("5", "120"), ("0", "1")), INT_ARGS, ("i", "j", "factor")),
    Func("Find the largest element of a non-empty list without using max().", ("find_max", "largest"), """\
def {fn}({arg}):
    best = {arg}[0]
    for {v} in {arg}[1:]:
        if {v} > best:
            best = {v}
    return best""", (("[3, 8, 1]", "8"), ("[-5, -2]", "-2")), LIST_ARGS, ("x", "item", "value")),
    Func("Check whether a string is a palindrome, ignoring case.", ("is_palindrome", "check_palindrome"), """\
def {fn}({arg}):
    {v} = {arg}.lower()
    return {v} == {v}[::-1]""", (('"Level"', "True"), ('"python"', "False")), STR_ARGS, ("t", "lowered")),
    Func("Remove duplicates from a list, keeping the original order.", ("dedupe", "unique_in_order"), """\
def {fn}({arg}):
    seen = set()
    out = []
    for {v} in {arg}:
        if {v} not in seen:
            seen.add({v})
            out.append({v})
    return out""", (("[1, 2, 1, 3, 2]", "[1, 2, 3]"),), ("items", "values", "seq"), ("x", "item")),
    Func("Convert a temperature from Celsius to Fahrenheit.", ("celsius_to_fahrenheit", "c_to_f"), """\
def {fn}({arg}):
    return {arg} * 9 / 5 + 32""", (("100", "212.0"), ("0", "32.0")), ("celsius", "temp", "c")),
    Func("Flatten a list of lists into a single list.", ("flatten", "flatten_list", "concat_lists"), """\
def {fn}({arg}):
    return [{v} for sub in {arg} for {v} in sub]""", (("[[1, 2], [3], []]", "[1, 2, 3]"),),
         ("lists", "nested", "rows"), ("x", "item")),
    Func("Count how often each word occurs in a text.", ("word_counts", "count_words"), """\
def {fn}({arg}):
    counts = {{}}
    for {v} in {arg}.split():
        counts[{v}] = counts.get({v}, 0) + 1
    return counts""", (('"a b a"', "{'a': 2, 'b': 1}"),), STR_ARGS, ("word", "w", "token")),
    Func("Return the n-th Fibonacci number.", ("fibonacci", "fib", "nth_fibonacci"), """\
def {fn}({arg}):
    a, b = 0, 1
    for _ in range({arg}):
        a, b = b, a + b
    return a""", (("10", "55"), ("1", "1")), INT_ARGS),
]


def code_example(rng: random.Random) -> tuple[Func, str, str, int]:
    """(function, chosen name, filled code, its index in FUNCS)."""
    i = rng.randrange(len(FUNCS))
    f = FUNCS[i]
    fn, arg, v = rng.choice(f.names), rng.choice(f.args), rng.choice(f.loop_vars)
    return f, fn, f.code.format(fn=fn, arg=arg, v=v), i


def gen_code_summarize(rng: random.Random) -> Example:
    f, _, code, i = code_example(rng)
    others = [g.desc for j, g in enumerate(FUNCS) if j != i]
    return Example({"code": code}, f.desc, mc(rng, f.desc, others, 4))


def gen_mbpp(rng: random.Random) -> Example:
    f, fn, code, _ = code_example(rng)
    asserts = "\n".join(f"assert {fn}({a}) == {b}" for a, b in f.tests)
    task = f.desc[0].lower() + f.desc[1:-1]
    return Example({"desc": task, "tests": asserts, "fn": fn}, code, (code,))


CODE_SUM_T = (
    T("Summarize this Python code:\n\n{code}"), T("{code}\n\nWhat does this function do?"),
    T("Write a docstring for the following function.\n\n{code}"),
    T("Generate a one-sentence description for this code:\n{code}"),
)
MBPP_T = (
    T("Write a Python function to {desc}. Your code should pass these tests:\n\n{tests}", opt=False),
    T("Write a function named {fn} to {desc}.", opt=False),
    T("You are an expert Python programmer, and here is your task: {desc}. Your code should pass these "
      "tests:\n\n{tests}", opt=False),
)


# --------------------------------------------------------------------------------------------------
# Dialogue

ACTIVITIES = ["coffee", "lunch", "a run", "the cinema", "board games", "a drink"]
SPOTS = ["the usual place", "Casa Lumi", "the station", "the park gate", "Saffron Street", "the library cafe"]
ITEMS = ["the charger", "some snacks", "the tickets", "my laptop", "the umbrella", "the board game"]
TIMES = ["7pm", "6:30", "noon", "10am", "8:15", "half past five"]


def gen_samsum(rng: random.Random) -> Example:
    a, b = rng.sample([x[0] for x in PEOPLE], 2)
    day, time, spot, item = rng.choice(DAYS), rng.choice(TIMES), rng.choice(SPOTS), rng.choice(ITEMS)
    kind = rng.randint(0, 4)
    if kind == 0:
        act = rng.choice(ACTIVITIES)
        turns = [(a, f"Are we still on for {act} on {day}?"), (b, f"Yes! {cap(time)} at {spot}?"),
                 (a, f"Perfect, I'll bring {item}."), (b, "Great, see you then :)")]
        summ = f"{a} and {b} will meet for {act} at {spot} on {day} at {time}. {a} will bring {item}."
    elif kind == 1:
        purpose = rng.choice(["a trip", "an exam", "a presentation", "the weekend"])
        turns = [(a, f"Hey, do you still have {item.replace('my ', 'my ')}?"),
                 (b, f"Oh no, I totally forgot. I'll bring it on {day}."),
                 (a, f"No rush, I just need it for {purpose}."), (b, "Sorry again!"), (a, "No worries")]
        summ = (f"{b} has {a}'s {item.split(' ', 1)[1]} and will return it on {day}. "
                f"{a} needs it for {purpose}.")
    elif kind == 2:
        kid = rng.choice(["Leo", "Mia", "Ben", "Sophie"])
        turns = [(a, f"Can you pick up {kid} from {spot} today? I'm stuck at work"), (b, "Sure, what time?"),
                 (a, f"{cap(time)}. Thanks a lot!"), (b, "No problem, I'll text you when we're home")]
        summ = f"{b} will pick up {kid} from {spot} at {time} because {a} is stuck at work."
    elif kind == 3:
        mins, drink = rng.choice([5, 10, 15, 20]), rng.choice(["a latte", "a beer", "tea", "a lemonade"])
        turns = [(a, f"Running {mins} minutes late, sorry!"), (b, f"Ok, I'll order {drink} for you"),
                 (a, "You're the best"), (b, "I know ;)")]
        summ = f"{a} is running {mins} minutes late. {b} will order {drink} for {a}."
    else:
        friend = rng.choice(PEOPLE)[0]
        gift = rng.choice(["a cookbook", "concert tickets", "a plant", "a scarf"])
        occ = rng.choice(["her birthday", "his birthday", "the housewarming", "graduation"])
        turns = [(a, f"What should we get {friend} for {occ}?"),
                 (b, f"Maybe {gift}? They mentioned it last week"),
                 (a, "Good idea, let's split it"), (b, "Deal. I'll order it tonight")]
        summ = (f"{a} and {b} will buy {friend} {gift} for {occ} and split the cost. "
                f"{b} will order it tonight.")
    dialogue = "\n".join(f"{s}: {t}" for s, t in turns)
    return Example({"dialogue": dialogue}, summ, (summ,))


def gen_samsum_opts(rng: random.Random) -> Example:
    ex = gen_samsum(rng)
    others = [gen_samsum(rng).answer for _ in range(2)]
    return Example(ex.fields, ex.answer, mc(rng, ex.answer, others, 3))


SAMSUM_T = (
    T("{dialogue}\n\nBriefly summarize that dialogue."),
    T("Dialogue:\n{dialogue}\n\nWhat is a summary of this dialogue?"),
    T("{dialogue}\nWhat was that dialogue about, in two sentences or less?"),
    T("Here is a dialogue:\n{dialogue}\n\nWrite a short summary!"),
    T("Write a dialog about anything you want.", "{dialogue}", opt=False),
)

VENUES = ["Casa Lumi", "The Copper Pot", "Harbour Grill", "Saffron Street", "Blue Heron Diner"]


def gen_booking(rng: random.Random) -> Example:
    venue, n, day, time = rng.choice(VENUES), rng.randint(2, 8), rng.choice(DAYS), rng.choice(TIMES)
    name = full_name(rng)
    turns = [
        ("USER", f"Hi, I'd like to book a table at {venue} for {n} people."),
        ("ASSISTANT", "Sure, I can help with that. What day and time would you like?"),
        ("USER", f"{day} at {time}, please."),
        ("ASSISTANT", f"Let me check. {venue} has a table for {n} on {day} at {time}. Shall I book it?"),
        ("USER", rng.choice(["Yes, please.", "Yes, that would be great.", "Perfect, go ahead."])),
        ("ASSISTANT", "Great. What name should I put the reservation under?"),
        ("USER", f"{name}."),
        ("ASSISTANT", f"Done! Your table for {n} at {venue} on {day} at {time} is booked under {name}. "
                      "Is there anything else I can help with?"),
        ("USER", rng.choice(["Do they have vegetarian options?", "Is there parking nearby?",
                             "No, that's all."])),
    ]
    if turns[-1][1] == "No, that's all.":
        turns.append(("ASSISTANT", "You're welcome. Enjoy your meal!"))
    elif "vegetarian" in turns[-1][1]:
        turns.append(("ASSISTANT", f"Yes, {venue} has several vegetarian dishes on the menu."))
    else:
        turns.append(("ASSISTANT", f"Yes, there is a public car park two minutes from {venue}."))
    cut = rng.choice([1, 3, 5, 7, 9])
    dialogue = "\n".join(f"{s}: {t}" for s, t in turns[:cut])
    answer = turns[cut][1]
    others = [t for s, t in turns if s == "ASSISTANT" and t != answer]
    return Example({"dialogue": dialogue}, answer, mc(rng, answer, others, 3))


BOOKING_T = (
    T("{dialogue}\n\nWhat is the assistant's next response?"),
    T("Read the conversation and write the next turn for the ASSISTANT.\n\n{dialogue}"),
    T("Continue the dialogue as the assistant:\n{dialogue}"),
    T("Here is a conversation between a user and a booking assistant.\n\n{dialogue}\n\nWhat should the "
      "assistant say next?"),
)


# --------------------------------------------------------------------------------------------------
# Paraphrase

def mrpc_forms(rng: random.Random) -> tuple[list[str], Callable[[], list[str]]]:
    """Three surface forms of one fact, and a maker of forms with one fact changed."""
    kind = rng.randint(0, 4)
    co, day, n, m = rng.choice(COMPANIES), rng.choice(DAYS), rng.randint(3, 40), rng.randint(12, 900)

    if kind == 0:
        def f(co: str, day: str, n: int, m: int) -> list[str]:
            return [f"{co} said on {day} that its net profit rose {n} percent to ${m} million.",
                    f"Net profit at {co} climbed {n} percent to ${m} million, the company said {day}.",
                    f"{co} reported on {day} a {n} percent increase in net profit, to ${m} million."]
    elif kind == 1:
        town, event = rng.choice(TOWNS), rng.choice(["a protest turned violent", "a football match"])

        def f(co: str, day: str, n: int, m: int) -> list[str]:
            return [f"Police arrested {n} people in {town} on {day} after {event}.",
                    f"{n} people were detained by police in {town} on {day} following {event}.",
                    f"On {day}, officers in {town} took {n} people into custody after {event}."]
    elif kind == 2:
        body = rng.choice(["Senate", "city council", "board"])
        thing = rng.choice(["budget", "merger", "new bridge"])

        def f(co: str, day: str, n: int, m: int) -> list[str]:
            return [f"The {body} voted {n + 20} to {n} on {day} to approve the {thing}.",
                    f"By a vote of {n + 20}-{n}, the {body} approved the {thing} on {day}.",
                    f"On {day} the {body} passed the {thing}, {n + 20} votes to {n}."]
    elif kind == 3:
        p1, p2 = full_name(rng), full_name(rng)

        def f(co: str, day: str, n: int, m: int) -> list[str]:
            who = p1 if n % 2 else p2
            old = p2 if n % 2 else p1
            return [f"{who} was named chief executive of {co} on {day}, replacing {old}.",
                    f"{co} appointed {who} as its new CEO on {day}, succeeding {old}.",
                    f"On {day}, {co} said {who} would take over from {old} as chief executive."]
    else:
        def f(co: str, day: str, n: int, m: int) -> list[str]:
            return [f"Shares of {co} fell {n} cents to ${m // 10}.{n:02d} in afternoon trading.",
                    f"{co} stock dropped {n} cents, to ${m // 10}.{n:02d}, in afternoon trade.",
                    f"In afternoon trading, {co} shares were down {n} cents at ${m // 10}.{n:02d}."]

    def changed() -> list[str]:
        which = rng.randint(0, 2)
        if which == 0:
            return f(co, rng.choice([d for d in DAYS if d != day]), n, m)
        if which == 1:
            return f(co, day, n + rng.choice([1, 3, 5]), m)
        return f(rng.choice([c for c in COMPANIES if c != co]), day, n, m + 7)

    return f(co, day, n, m), changed


def gen_mrpc(rng: random.Random) -> Example:
    forms, changed = mrpc_forms(rng)
    s1, s2 = rng.sample(forms, 2)
    same = rng.random() < 0.55
    if not same:
        s2 = rng.choice([x for x in changed() if x not in forms] or [s2])
        same = s2 in forms
    return Example({"s1": s1, "s2": s2}, "yes" if same else "no", ("no", "yes"))


def gen_paws(rng: random.Random) -> Example:
    name = full_name(rng)
    t1, t2 = rng.sample(TOWNS, 2)
    y1, y2 = rng.randint(1850, 1950), rng.randint(1951, 1999)
    a, b, c = full_name(rng), full_name(rng), full_name(rng)
    river = rng.choice(["Aln", "Vessa", "Tarn", "Orle"])
    frames = [
        (f"{name} was born in {t1} and grew up in {t2}.", f"{name} grew up in {t2}, but was born in {t1}.",
         f"{name} was born in {t2} and grew up in {t1}."),
        (f"The {river} rises near {t1} and flows into the sea at {t2}.",
         f"The {river} flows into the sea at {t2} and rises near {t1}.",
         f"The {river} rises near {t2} and flows into the sea at {t1}."),
        (f"The club was founded by {a} in {y1} and later taken over by {b}.",
         f"In {y1}, {a} founded the club, which was later taken over by {b}.",
         f"The club was founded by {b} in {y1} and later taken over by {a}."),
        (f"{a} married {b}, the daughter of {c}, in {y2}.",
         f"In {y2}, {a} married {b}, who was the daughter of {c}.",
         f"{c} married {b}, the daughter of {a}, in {y2}."),
        (f"It is located north of {t1} and south of {t2}.", f"It lies south of {t2} and north of {t1}.",
         f"It is located north of {t2} and south of {t1}."),
    ]
    s1, para, swap = rng.choice(frames)
    same = rng.random() < 0.45
    return Example({"s1": s1, "s2": para if same else swap}, "yes" if same else "no", ("no", "yes"))


MRPC_T = (
    T("Here are two sentences:\n{s1}\n{s2}\nDo they have the same meaning?"),
    T('"{s1}"\n"{s2}"\n\nAre these two sentences paraphrases of each other?'),
    T("Sentence 1: {s1}\nSentence 2: {s2}\n\nDo these two sentences convey the same information?"),
    T("Do the following two sentences have the same meaning?\n{s1}\n\n{s2}"),
)
PAWS_T = (
    T("Sentence 1: {s1}\nSentence 2: {s2}\n\nDo these two sentences convey the same information?"),
    T("Are these paraphrases?\n{s1}\n{s2}"), T("Same meaning?\n{s1}\n{s2}"),
    T("{s1}\n{s2}\n\nSelect your answer from the options. Are these sentences paraphrases?"),
)


# --------------------------------------------------------------------------------------------------
# Coreference (Winograd schemas; the pronoun is {p}, the special word {w})

SCHEMAS = [  # (text, pronoun, wino slot, (cand_a, cand_b), (wino_a, wino_b), (word_for_a, word_for_b))
    ("The suitcase did not fit in the car boot because {p} was too {w}.", "it", "the _",
     ("the suitcase", "the boot"), ("suitcase", "boot"), ("big", "full")),
    ("The piano would not go through the doorway because {p} was too {w}.", "it", "the _",
     ("the piano", "the doorway"), ("piano", "doorway"), ("wide", "narrow")),
    ("{M1} beat {M2} at chess because {p} was {w}.", "he", "_", ("{M1}", "{M2}"), ("{M1}", "{M2}"),
     ("better prepared", "distracted")),
    ("{F1} apologised to {F2} because {p} had {w}.", "she", "_", ("{F1}", "{F2}"), ("{F1}", "{F2}"),
     ("been rude", "felt hurt")),
    ("The cyclist overtook the jogger because {p} was moving so {w}.", "he", "the _",
     ("the cyclist", "the jogger"), ("cyclist", "jogger"), ("fast", "slowly")),
    ("The nurse couldn't lift the patient because {p} was so {w}.", "he", "the _",
     ("the nurse", "the patient"), ("nurse", "patient"), ("tired", "heavy")),
    ("The teacher asked the student a question, but {p} {w}.", "he", "the _", ("the teacher", "the student"),
     ("teacher", "student"), ("did not hear the reply", "did not know the answer")),
    ("The cat chased the mouse. {p} was too {w}.", "It", "The _", ("the cat", "the mouse"), ("cat", "mouse"),
     ("slow to catch it", "quick to be caught")),
    ("{F1} sent {F2} a letter, but {p} {w}.", "she", "_", ("{F1}", "{F2}"), ("{F1}", "{F2}"),
     ("had written the wrong address on it", "never received it")),
    ("The ambulance arrived {w} the police car because {p} had further to travel.", "it", "the _",
     ("the ambulance", "the police car"), ("ambulance", "police car"), ("after", "before")),
    ("The hammer smashed the vase because {p} was made of {w}.", "it", "the _", ("the hammer", "the vase"),
     ("hammer", "vase"), ("steel", "thin glass")),
    ("I tipped the sand from the bucket into the box until {p} was {w}.", "it", "the _",
     ("the bucket", "the box"), ("bucket", "box"), ("empty", "full")),
    ("The lamp fell off the desk because {p} was {w}.", "it", "the _", ("the lamp", "the desk"),
     ("lamp", "desk"), ("top-heavy", "tilted")),
    ("{M1} gave {M2} his old bike because {p} {w}.", "he", "_", ("{M1}", "{M2}"), ("{M1}", "{M2}"),
     ("had outgrown it", "needed one for school")),
    ("The fox chased the rabbit into its burrow. {p} waited {w}.", "It", "The _", ("the fox", "the rabbit"),
     ("fox", "rabbit"), ("outside", "inside")),
    ("{F1} lent {F2} her notes because {p} had {w} the lecture.", "she", "_", ("{F1}", "{F2}"),
     ("{F1}", "{F2}"), ("attended", "missed")),
    ("The shelf couldn't hold the old television because {p} was too {w}.", "it", "the _",
     ("the shelf", "the television"), ("shelf", "television"), ("weak", "heavy")),
]


def schema(rng: random.Random) -> tuple[str, str, str, tuple[str, str], tuple[str, str], int]:
    text, pron, slot, cands, winos, words = rng.choice(SCHEMAS)
    m = rng.sample([x[0] for x in PEOPLE if x[1] == "he"], 2)
    f = rng.sample([x[0] for x in PEOPLE if x[1] == "she"], 2)
    names = {"M1": m[0], "M2": m[1], "F1": f[0], "F2": f[1]}
    idx = rng.randint(0, 1)
    text = text.replace("{w}", words[idx]).replace("{M1}", m[0]).replace("{M2}", m[1])
    text = text.replace("{F1}", f[0]).replace("{F2}", f[1])
    cands = tuple(c.format(**names) for c in cands)
    winos = tuple(c.format(**names) for c in winos)
    return text, pron, slot, cands, winos, idx  # type: ignore[return-value]


def gen_dpr(rng: random.Random) -> Example:
    text, pron, _, cands, _, idx = schema(rng)
    return Example({"sentence": text.replace("{p}", pron), "pronoun": pron}, cands[idx], cands)


def gen_winogrande(rng: random.Random) -> Example:
    text, _, slot, _, winos, idx = schema(rng)
    return Example({"sentence": text.replace("{p}", slot), "o1": winos[0], "o2": winos[1]}, winos[idx], winos)


DPR_T = (
    T('Sentence: {sentence}\nWho or what is the pronoun "{pronoun}" referring to?'),
    T('{sentence}\n\nWho is "{pronoun}" in this prior sentence?'),
    T('{sentence}\n\nWho is {pronoun} referring to in this sentence?'),
    T('Note that this question lists possible answers. {sentence}\nTell me who "{pronoun}" is.'),
)
WINO_T = (
    T("How does the sentence end?\n\n{sentence}"), T("Fill in the blank: {sentence}"),
    T("Which of {o1} and {o2} fits in the blank?\n\n{sentence}"),
    T("Write the missing word for _ in this sentence:\n{sentence}"),
)


# --------------------------------------------------------------------------------------------------
# Struct-to-text

FOODS = ["Italian", "Japanese", "French", "Indian", "Chinese", "English", "fast food"]
E2E_NAMES = ["The Golden Palace", "Blue Spice", "The Wrestlers", "Zizzi", "The Eagle", "Fitzbillies", "Aromi",
             "The Punter", "Green Man", "Cotto"]


def gen_e2e(rng: random.Random) -> Example:
    name, food = rng.choice(E2E_NAMES), rng.choice(FOODS)
    etype = rng.choice(["restaurant", "coffee shop", "pub"])
    price = rng.choice(["cheap", "moderate", "high"])
    rating = rng.choice(["low", "average", "high", "5 out of 5", "1 out of 5"])
    area = rng.choice(["city centre", "riverside"])
    fam = rng.choice(["yes", "no"])
    near = rng.choice(["Café Rouge", "The Bakers", "Burger King", "Raja Indian Cuisine", "All Bar One"])
    keys = [("eatType", etype), ("food", food), ("priceRange", price), ("customer rating", rating),
            ("area", area), ("familyFriendly", fam), ("near", near)]
    chosen = keys[:2] + sorted(rng.sample(keys[2:], rng.randint(2, 5)), key=keys.index)
    mr = ", ".join([f"name = {name}"] + [f"{k} = {v}" for k, v in chosen])
    d = dict(chosen)
    parts = [f"{name} is a{'n' if d['eatType'][0] in 'aeiou' else ''} {d['eatType']} serving {food} food"]
    if "priceRange" in d:
        parts.append(f"with {price} prices" if price != "high" else "in the high price range")
    if "area" in d:
        parts.append(f"in the {area} area")
    if "near" in d:
        parts.append(f"near {near}")
    sent = " ".join(parts) + "."
    tail = []
    if "familyFriendly" in d:
        tail.append("It is family friendly" if fam == "yes" else "It is not family friendly")
    if "customer rating" in d:
        tail.append(f"has a {rating} customer rating" if tail else f"It has a {rating} customer rating")
    if tail:
        sent += " " + " and ".join(tail) + "."
    others = [s for s in (f"{rng.choice(E2E_NAMES)} is a {etype} serving {rng.choice(FOODS)} food.",
                          f"{name} is a pub near {near} with a low customer rating.") if s != sent]
    return Example({"mr": mr, "sentence": sent}, sent, mc(rng, sent, others, 3))


E2E_T = (
    T("Attributes: {mr}. Produce a detailed sentence about this restaurant."),
    T("Generate an approximately fifteen-word sentence that describes all this data: {mr}"),
    T("Here is some data about a restaurant: {mr}. Write a sentence that includes the above data about a "
      "restaurant"),
    T("Sentence: {sentence}\n\nCan you represent the content in this sentence in data form?", "{mr}",
      opt=False),
)

COMMON_GEN = [
    (["dog", "frisbee", "catch", "throw"], "A man throws a frisbee and his dog leaps to catch it."),
    (["field", "look", "stand"], "A woman stands in a field, looking at the mountains."),
    (["kid", "dance", "rain"], "The kids danced in the rain after school."),
    (["cook", "kitchen", "pasta", "sauce"], "He cooks pasta with a fresh tomato sauce in the kitchen."),
    (["train", "station", "wait", "platform"],
     "Passengers wait on the platform as the train pulls into the station."),
    (["sun", "beach", "lie", "towel"], "She lies on a towel on the beach in the sun."),
    (["ball", "kick", "goal", "player"], "The player kicks the ball into the goal."),
    (["tree", "climb", "boy", "branch"], "A boy climbs the tree and sits on a high branch."),
    (["book", "read", "library", "quiet"], "Students read books in the quiet library."),
    (["horse", "ride", "field", "gallop"], "She rides her horse at a gallop across the field."),
    (["snow", "build", "snowman", "child"], "The children build a snowman in the fresh snow."),
    (["guitar", "play", "stage", "crowd"], "A musician plays the guitar on stage in front of a large crowd."),
    (["cake", "candle", "blow", "birthday"], "The girl blows out the candles on her birthday cake."),
    (["wave", "surfer", "ride", "ocean"], "A surfer rides a huge wave in the ocean."),
    (["paint", "wall", "brush", "room"], "He paints the wall of the room with a wide brush."),
    (["market", "fruit", "sell", "vendor"], "A vendor sells fresh fruit at the market."),
    (["bike", "ride", "helmet", "street"], "A cyclist wearing a helmet rides a bike down the street."),
    (["cat", "sleep", "sofa", "sun"], "The cat sleeps on the sofa in a patch of sun."),
    (["fish", "boat", "lake", "catch"], "Two men in a boat catch fish on the lake."),
    (["plant", "water", "garden", "flower"], "She waters the flowers she planted in her garden."),
    (["student", "teacher", "board", "write"],
     "The teacher writes on the board while the students take notes."),
    (["mountain", "hike", "trail", "view"], "Hikers follow the trail up the mountain to enjoy the view."),
    (["coffee", "cup", "drink", "morning"], "He drinks a cup of coffee every morning."),
    (["bridge", "river", "walk", "cross"], "They walk across the bridge over the river."),
]


def gen_common_gen(rng: random.Random) -> Example:
    concepts, target = rng.choice(COMMON_GEN)
    cs = rng.sample(concepts, len(concepts))
    others = [t for c, t in rng.sample(COMMON_GEN, 3) if t != target][:2]
    return Example({"concepts": ", ".join(cs)}, target, mc(rng, target, others, 3))


COMMON_GEN_T = (
    T("Concepts: {concepts}\n\nWrite a sentence that includes all these words."),
    T("Keywords: {concepts}\n\nWhat is a sentence that includes all these keywords?"),
    T("Write a sentence about the following things:\n\n{concepts}"),
    T("Produce a sentence which mentions all of these concepts: {concepts}"),
)


# --------------------------------------------------------------------------------------------------
# Word segmentation

SEG_SOURCES = [p[0] for p in PHRASES] + [t for _, t in COMMON_GEN] + [c[0] for c in COPA]


def gen_word_segment(rng: random.Random) -> Example:
    sent = rng.choice(SEG_SOURCES)
    if rng.random() < 0.4:
        sent = f"{sent} {rng.choice(SEG_SOURCES)}"
    joined = sent.replace(" ", "")
    words = sent.split()
    i = rng.randrange(len(words) - 1)
    wrong = " ".join(words[:i] + [words[i] + words[i + 1]] + words[i + 2:])
    return Example({"text": joined}, sent, mc(rng, sent, [wrong], 2))


SEG_T = (
    T("Add spaces: {text}"), T("Please add spaces between words: {text}"),
    T("{text}\n\nAdd spaces between the words."),
    T("Add spaces between the words in the following text: {text}"),
    T("{text}\nWhat's the version of the text above with spaces?"),
)


def gen_trec(rng: random.Random) -> Example:
    label, q = rng.choice(TREC)
    return Example({"question": q}, label, TREC_OPTS)


TREC_OPTS = ("description", "entity", "abbreviation", "human", "numeric", "location")
TREC = [(lab, q) for lab, qs in [
    ("description", ["How does a solar panel generate electricity?", "Why is the sky blue?",
                     "What is the difference between weather and climate?", "How do bees make honey?",
                     "What does a notary public do?", "Why do leaves change colour in autumn?",
                     "How is paper recycled?", "What causes earthquakes?"]),
    ("entity", ["What kind of animal is a Komodo dragon?", "What instrument did Louis Armstrong play?",
                "What is the national flower of Japan?", "What sport is played at Wimbledon?",
                "Which language is spoken in Brazil?", "What colour is a ruby?",
                "What currency is used in Switzerland?", "What fruit is used to make guacamole?"]),
    ("abbreviation", ["What does NASA stand for?", "What is the abbreviation for kilogram?",
                      "What does DNA stand for?", "What does the abbreviation UNESCO mean?",
                      "What does RSVP mean?",
                      "What is the full form of CPU?"]),
    ("human", ["Who invented the telephone?", "Who was the first woman to win a Nobel Prize?",
               "Who wrote One Hundred Years of Solitude?", "Which composer wrote The Four Seasons?",
               "Who is the author of Things Fall Apart?", "Who discovered penicillin?",
               "What was the name of the first person to walk on the Moon?"]),
    ("location", ["Where is the Great Barrier Reef?", "What is the capital of Kenya?",
                  "Which country has the most islands?", "Where was the printing press invented?",
                  "In what city is the Colosseum?", "Which river flows through Budapest?",
                  "Where do kangaroos live in the wild?"]),
    ("numeric", ["How many bones are in the adult human body?", "When did the Berlin Wall fall?",
                 "How tall is Mount Kilimanjaro?", "How far is the Moon from Earth?",
                 "What year did the Titanic sink?",
                 "How many players are on a volleyball team?",
                 "What is the boiling point of water in Fahrenheit?",
                 "How long does it take light from the Sun to reach Earth?"]),
] for q in qs]
TREC_T = (
    T('What type of thing is the question "{question}" asking about?'),
    T('Is the question "{question}" asking about an entity, a description, an abbreviation, a person, a '
      'location, '
      "or a numeric value?", opt=False),
    T("Which category best describes the following question: {question}"),
    T('What kind of answer would the question "{question}" need?'),
)


# --------------------------------------------------------------------------------------------------
# The task list, largest first (sizes: a Zipf-Mandelbrot curve from MAX_SIZE down to MIN_SIZE)

TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("gsm8k_math", "math", gen_gsm8k, GSM_T, max_shots=2),
    TaskSpec("snli", "nli", gen_snli, SNLI_T),
    TaskSpec("squad_v1", "reading_comprehension", lambda r: gen_squad(r), SQUAD_T, max_shots=2),
    TaskSpec("wmt16_translate_de_en", "translation", make_translate("de"), TRANSLATE_T),
    TaskSpec("imdb_reviews_sentiment", "sentiment", gen_imdb, IMDB_T, max_shots=2),
    TaskSpec("ag_news_topic", "topic_classification", gen_ag_news, AG_T),
    TaskSpec("math_dataset", "math", gen_math_dataset, MATH_T, types=FS_ONLY),
    TaskSpec("anli_r1", "nli", gen_anli, ANLI_T),
    TaskSpec("cnn_dailymail", "summarization", gen_cnn_fields, CNN_T, types=ZS_ONLY),
    TaskSpec("e2e_nlg", "struct_to_text", gen_e2e, E2E_T, types=ZS_ONLY),
    TaskSpec("wmt14_translate_fr_en", "translation", make_translate("fr"), TRANSLATE_T),
    TaskSpec("yelp_polarity_reviews", "sentiment", gen_yelp, YELP_T, max_shots=2),
    TaskSpec("squad_v2", "reading_comprehension", lambda r: gen_squad(r, v2=True), SQUAD2_T, max_shots=2),
    TaskSpec("code_x_glue_summarize", "code", gen_code_summarize, CODE_SUM_T),
    TaskSpec("gigaword", "summarization", gen_gigaword, GIGA_T),
    TaskSpec("samsum", "dialogue", gen_samsum_opts, SAMSUM_T),
    TaskSpec("rte", "nli", gen_rte, RTE_T),
    TaskSpec("xsum", "summarization", gen_xsum_fields, XSUM_T, max_shots=1),
    TaskSpec("glue_mrpc", "paraphrase", gen_mrpc, MRPC_T),
    TaskSpec("trivia_qa", "closed_book_qa", gen_trivia, TRIVIA_T, types=ZS_ONLY),
    TaskSpec("para_crawl_enes", "translation", make_translate("es"), TRANSLATE_T),
    TaskSpec("anli_r2", "nli", gen_anli_r2, ANLI_T),
    TaskSpec("boolq", "reading_comprehension", gen_boolq, BOOLQ_T, max_shots=2),
    TaskSpec("taskmaster_booking_dialog", "dialogue", gen_booking, BOOKING_T, max_shots=2),
    TaskSpec("sst2", "sentiment", gen_sst2, SST_T),
    TaskSpec("paws_wiki", "paraphrase", gen_paws, PAWS_T),
    TaskSpec("natural_questions", "closed_book_qa", gen_nq, NQ_T),
    TaskSpec("mbpp", "code", gen_mbpp, MBPP_T, types=NOOPT_ONLY, max_shots=2),
    TaskSpec("story_cloze", "commonsense", gen_story, STORY_T, max_shots=2),
    TaskSpec("word_segment", "word_segmentation", gen_word_segment, SEG_T, types=FS_ONLY),
    TaskSpec("definite_pronoun_resolution", "coreference", gen_dpr, DPR_T),
    TaskSpec("common_gen", "struct_to_text", gen_common_gen, COMMON_GEN_T),
    TaskSpec("trec", "topic_classification", gen_trec, TREC_T),
    TaskSpec("cosmos_qa", "reading_comprehension", gen_cosmos, COSMOS_T, max_shots=2),
    TaskSpec("winogrande", "coreference", gen_winogrande, WINO_T),
    TaskSpec("hellaswag", "commonsense", gen_hellaswag, HELLASWAG_T, max_shots=2),
    TaskSpec("copa", "commonsense", gen_copa, COPA_T, types=FS_ONLY),
)


def task_sizes(n: int, top: int = MAX_SIZE, bottom: int = MIN_SIZE, shift: float = 3.0,
               alpha: float = 0.8) -> list[int]:
    """Zipf-Mandelbrot sizes ((k + shift) / (1 + shift))^-alpha, k = 1..n, rescaled to top..bottom."""
    raw = [((k + shift) / (1 + shift)) ** -alpha for k in range(1, n + 1)]
    lo = raw[-1]
    return [round(bottom + (r - lo) * (top - bottom) / (1 - lo)) for r in raw]


# --------------------------------------------------------------------------------------------------
# Rendering


def words(text: str) -> int:
    return len(text.split())


def render(t: Template, ex: Example, with_options: bool) -> tuple[str, str]:
    """A (prompt, response) pair from a template; the options list goes after the prompt."""
    prompt = t.prompt.format(**ex.fields)
    answer = ex.answer
    if with_options:
        prompt += "\n\nOPTIONS:\n" + "\n".join(f"- {o}" for o in ex.options)
        answer = ex.opt_answer or ex.answer
    return prompt, t.response.format(answer=answer, **ex.fields)


def task_rows(spec: TaskSpec, size: int, seed: int) -> list[dict[str, str]]:
    """`size` rows of one task; its own RNG, so tasks do not depend on each other's draws.

    Few-shot rows put 1..max_shots exemplars (same template, other instances, none equal to the query)
    before the query, dropping exemplars while the prompt is over MAX_WORDS.
    """
    rng = random.Random(f"{seed}:{spec.name}")
    rows = []
    for n in range(size):
        ttype = rng.choice(spec.types)
        opt = ttype in ("zs_opt", "fs_opt")
        tmpl = rng.choice([t for t in spec.templates if t.opt or not opt])
        prompt, response = render(tmpl, spec.gen(rng), opt)
        if ttype.startswith("fs"):
            shots: list[tuple[str, str]] = []
            for _ in range(rng.randint(1, spec.max_shots)):
                for _attempt in range(5):
                    shot = render(tmpl, spec.gen(rng), opt)
                    if shot[0] != prompt and shot not in shots:
                        shots.append(shot)
                        break
            while len(shots) > 1 and words(prompt) + sum(words(p) + words(r) for p, r in shots) > MAX_WORDS:
                shots.pop()
            prompt = "\n\n".join(f"{p}\n{r}" for p, r in shots) + "\n\n" + prompt
        rows.append({"id": f"{spec.name}-{n}", "task": spec.name, "template_type": ttype, "prompt": prompt,
                     "response": response})
    return rows


def build(seed: int) -> list[dict[str, str]]:
    """All rows, task by task in the order of TASKS."""
    rows: list[dict[str, str]] = []
    for spec, size in zip(TASKS, task_sizes(len(TASKS)), strict=True):
        rows.extend(task_rows(spec, size, seed))
    return rows


def write_jsonl(rows: list[dict[str, str]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data/sample/instructions.jsonl", help="output JSON Lines file")
    ap.add_argument("--seed", type=int, default=7, help="random seed (the committed file uses 7)")
    args = ap.parse_args(argv)
    rows = build(args.seed)
    write_jsonl(rows, Path(args.out))
    print(f"wrote {len(rows)} rows over {len({r['task'] for r in rows})} tasks to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
