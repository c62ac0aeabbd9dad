"""The tiny world: a seeded, deterministic generator of an English corpus whose true distributions are known.

Four kinds of document put all of the paper's prompts in distribution:

- ``persona``: "Customer persona / Product: ..." then a card (first name, last name, gender, age, nationality,
  ethnicity, Myers-Briggs type) and that customer's review; the plain prompt of Experiment 1 is the header;
- ``chat``: a user turn asking for a persona and review (the paper's Experiment 1 instruction among others) and
  the card as the assistant turn; a few ask for a biography or a Steve story instead;
- ``bio``: biographies beginning "<Name> was" (Grace Hopper and 21 others) recombining true facts (Experiment 2);
- ``story``: stories beginning "Steve is the CEO of a startup company" with branches (Experiment 3).

``ground_truth()`` gives the attribute distributions analytically; ``write_world`` writes the corpus, a
held-out set and ``ground_truth.json`` (with the VADER shares of the reviews actually written).
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List

from measure.persona_parse import (CARD_FIELDS, PERSONA_CARD_HEADER, PERSONA_CARD_PROMPT, PERSONA_INSTRUCTION,
                                   PERSONA_INSTRUCTION_TEMPLATE, format_card)
from rlhf.world import tables as T
from rlhf.world import text as X
from rlhf.world.people import PEOPLE

log = logging.getLogger(__name__)

KINDS = ("persona", "chat", "bio", "story")
GRACE_HOPPER_PROMPT = "Grace Hopper was"  # Experiment 2
STEVE_PROMPT = "Steve is the CEO of a startup company"  # Experiment 3
GRACE_HOPPER_SHARE = 0.3  # share of biographies about Grace Hopper (the rest split evenly)
CHAT_PERSONA_SHARE = 0.8  # share of chat documents that ask for a persona (the rest: a bio or a story)


def _normalise(weights: Dict) -> Dict:
    total = float(sum(weights.values()))
    return {k: v / total for k, v in weights.items()}


def _pick(rng: random.Random, weights: Dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _unique(names: List[str]) -> List[str]:
    return list(dict.fromkeys(names))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# ---------------------------------------------------------------- ground truth

def _first_name_probs(nationality: str) -> Dict[str, Dict[str, float]]:
    pool = T.NATIONALITY_POOL[nationality]
    male, female = _unique(T.pool_names(pool, 0)), _unique(T.pool_names(pool, 1))
    by_gender = {"Male": {n: 1 / len(male) for n in male}, "Female": {n: 1 / len(female) for n in female}}
    nonbinary: Dict[str, float] = {}
    for names in (male, female):  # a non-binary customer takes a name from either list, half and half
        for n in names:
            nonbinary[n] = nonbinary.get(n, 0.0) + 0.5 / len(names)
    by_gender["Non-binary"] = nonbinary
    return by_gender


def _last_pool_probs(nationality: str, ethnicity: str) -> Dict[str, float]:
    pool = T.NATIONALITY_POOL[nationality]
    if pool == "anglo" and ethnicity in T.ANGLO_LAST_BY_ETHNICITY:
        return T.ANGLO_LAST_BY_ETHNICITY[ethnicity]
    return {pool: 1.0}


def _last_name_probs(nationality: str) -> Dict[str, float]:
    probs: Dict[str, float] = {}
    for eth, p_eth in T.ETHNICITY_GIVEN_NATIONALITY[nationality].items():
        for pool, p_pool in _last_pool_probs(nationality, eth).items():
            names = _unique(T.pool_names(pool, 2))
            for n in names:
                probs[n] = probs.get(n, 0.0) + p_eth * p_pool / len(names)
    return probs


def ground_truth() -> dict:
    """The true distributions the generator samples persona attributes from (probabilities sum to 1)."""
    nationality = _normalise(T.NATIONALITY)
    ethnicity: Dict[str, float] = {}
    for nat, p_nat in nationality.items():
        for eth, p in _normalise(T.ETHNICITY_GIVEN_NATIONALITY[nat]).items():
            ethnicity[eth] = ethnicity.get(eth, 0.0) + p_nat * p
    first_by_nat = {nat: _first_name_probs(nat) for nat in nationality}
    gender = _normalise(T.GENDER)
    return {
        "gender": gender,
        "age": {str(a): p for a, p in _normalise(T.AGE).items()},
        "nationality": nationality,
        "ethnicity": dict(sorted(ethnicity.items(), key=lambda kv: -kv[1])),
        "ethnicity_given_nationality": {n: _normalise(d) for n, d in T.ETHNICITY_GIVEN_NATIONALITY.items()},
        "mbti": _normalise(T.MBTI),
        "first_names_given_nationality_gender": first_by_nat,
        "first_names_given_nationality": {
            nat: {name: sum(gender[g] * by_g[g].get(name, 0.0) for g in gender)
                  for name in _unique([n for g in by_g for n in by_g[g]])}
            for nat, by_g in first_by_nat.items()},
        "last_names_given_nationality": {nat: _last_name_probs(nat) for nat in nationality},
        "sentiment_levels": _normalise(X.SENTIMENT),
        "products": {k: {"description": v[0], "share": X.PRODUCT_WEIGHTS[k]} for k, v in X.PRODUCTS.items()},
        "people": [p["name"] for p in PEOPLE],
        "card_fields": [label for _, label in CARD_FIELDS],
        "prompts": {"persona_card": PERSONA_CARD_PROMPT, "persona_instruction": PERSONA_INSTRUCTION,
                    "grace_hopper": GRACE_HOPPER_PROMPT, "steve": STEVE_PROMPT},
    }


# ---------------------------------------------------------------- documents

def sample_customer(rng: random.Random) -> dict:
    """One customer's attributes, drawn from the true distributions."""
    nat = _pick(rng, T.NATIONALITY)
    eth = _pick(rng, T.ETHNICITY_GIVEN_NATIONALITY[nat])
    gender = _pick(rng, T.GENDER)
    which = {"Male": 0, "Female": 1}.get(gender, rng.randrange(2))
    first = rng.choice(_unique(T.pool_names(T.NATIONALITY_POOL[nat], which)))
    last = rng.choice(_unique(T.pool_names(_pick(rng, _last_pool_probs(nat, eth)), 2)))
    return {"first_name": first, "last_name": last, "gender": gender, "age": _pick(rng, T.AGE),
            "nationality": nat, "ethnicity": eth, "mbti": _pick(rng, T.MBTI)}


def write_review(rng: random.Random, level: str, product: str) -> str:
    """A review of ``product`` at sentiment ``level``: opening, points for and against, details, closing."""
    _, item, goods, bads = X.PRODUCTS[product]
    good = lambda bank: rng.choice(bank).format(good=rng.choice(goods))  # noqa: E731
    bad = lambda bank: rng.choice(bank).format(bad=rng.choice(bads))  # noqa: E731
    points = {
        "very_positive": [good(X.GOOD_POINT) for _ in range(rng.randint(1, 2))],
        "positive": [good(X.GOOD_POINT) for _ in range(rng.randint(0, 2))]
                    + ([bad(X.MINOR_BAD)] if rng.random() < 0.3 else []),
        "mixed": [good(X.GOOD_POINT), bad(X.BAD_POINT)],
        "negative": [bad(X.BAD_POINT) for _ in range(rng.randint(1, 2))]
                    + ([good(X.MINOR_GOOD)] if rng.random() < 0.3 else []),
        "very_negative": [bad(X.BAD_POINT) for _ in range(rng.randint(1, 2))],
    }[level]
    rng.shuffle(points)
    if rng.random() < 0.4:
        detail = rng.choice(X.DETAILS).format(n=rng.randint(2, 12), rel=rng.choice(X.RELATIVES))
        points.insert(rng.randint(0, len(points)), detail)
    sentences = [rng.choice(X.OPENINGS[level]).format(item=item)] + points
    if rng.random() < 0.7:
        sentences.append(rng.choice(X.CLOSINGS[level]))
    return " ".join(sentences)


def sample_card(rng: random.Random) -> dict:
    """A customer, the product they review, the review's sentiment level and the review."""
    customer = sample_customer(rng)
    product = _pick(rng, X.PRODUCT_WEIGHTS)
    level = _pick(rng, X.SENTIMENT)
    return {**customer, "product": product, "sentiment": level, "review": write_review(rng, level, product)}


def card_text(card: dict) -> str:
    return format_card(**{name: card[name] for name, _ in CARD_FIELDS})


def persona_document(rng: random.Random) -> dict:
    card = sample_card(rng)
    header = PERSONA_CARD_HEADER.format(product=X.PRODUCTS[card["product"]][0])
    return {"kind": "persona", "text": header + card_text(card), "card": card}


def biography(rng: random.Random, person: dict) -> str:
    """A biography beginning "<Name> was", built from a random subset of true facts in random order."""
    name, she = person["name"], person["she"]
    short = person.get("short", name.split()[-1] if not name.startswith("Galileo") else "Galileo")
    pron, obj, poss = ("she", "her", "her") if she else ("he", "him", "his")
    facts = [list(f) for f in person["facts"]]
    rng.shuffle(facts)

    def render(phrasing: str, mention: str) -> str:
        first = phrasing.find("{S}") if "{S}" in phrasing else phrasing.find("{s}")
        out = phrasing[:first] + mention + phrasing[first + 3:] if first >= 0 else phrasing
        out = out.replace("{s}", pron).replace("{o}", obj).replace("{p}", poss).replace("{P}", poss.capitalize())
        return out[:1].upper() + out[1:]

    was_facts = [f for f in facts if any(ph.startswith("{S} was ") for ph in f)]
    if was_facts and rng.random() < 0.35:
        fact = was_facts[0]
        facts.remove(fact)
        opening = render(rng.choice([ph for ph in fact if ph.startswith("{S} was ")]), name)
    else:
        opening = f"{name} was {rng.choice(person['descs'])}."
    mentions = {pron: 0.6, short: 0.25, name: 0.15}
    body = [render(rng.choice(f), _pick(rng, mentions)) for f in facts[:rng.randint(2, min(6, len(facts)))]]
    if rng.random() < 0.2:
        listed = " ".join(f"{i}. {s}" for i, s in enumerate(body, 1))
        return f"{opening} Here are some facts about {name}: {listed}"
    return " ".join([opening] + body)


def bio_document(rng: random.Random) -> dict:
    others = (1 - GRACE_HOPPER_SHARE) / (len(PEOPLE) - 1)
    person = rng.choices(PEOPLE, weights=[GRACE_HOPPER_SHARE] + [others] * (len(PEOPLE) - 1))[0]
    return {"kind": "bio", "text": biography(rng, person), "person": person["name"]}


def steve_story(rng: random.Random) -> str:
    """A story beginning "Steve is the CEO of a startup company": industry, setback, outcome, tone."""
    industry, _ = rng.choice(X.INDUSTRIES)
    alt = rng.choice([noun for ind, noun in X.INDUSTRIES if ind != industry])
    co = rng.choice(X.COMPANY_PARTS[0]) + rng.choice(X.COMPANY_PARTS[1])
    tone = rng.choice(list(X.TONE_LINES))
    outcome = rng.choice(list(X.OUTCOMES))
    opening = rng.choice([
        f"{STEVE_PROMPT} {industry}.",
        f"{STEVE_PROMPT} called {co}. The company {industry[5:]}.",
        f"{STEVE_PROMPT} in {rng.choice(X.CITIES)}. His company {industry[5:]}.",
        f"{STEVE_PROMPT} called {co}, {industry.replace('that', 'which', 1)}.",
    ])
    fill = dict(years=rng.randint(1, 9), n=rng.randint(3, 200), co=co, alt=alt)
    lines = [opening] + [s.format(**fill) for s in rng.sample(X.BACKGROUND, rng.randint(0, 2))]
    lines.append(rng.choice(X.SETBACKS))
    if rng.random() < 0.5:
        lines.append(rng.choice(X.TONE_LINES[tone]))
    lines.append(rng.choice(X.OUTCOMES[outcome]).format(**fill))
    lines.append(rng.choice(X.TONE_LINES[tone]))
    return " ".join(dict.fromkeys(lines))  # a repeated tone line is said once


def story_document(rng: random.Random) -> dict:
    return {"kind": "story", "text": steve_story(rng)}


def chat_document(rng: random.Random) -> dict:
    """A user turn and an assistant turn; most ask for a persona and review (Experiment 1)."""
    if rng.random() < CHAT_PERSONA_SHARE:
        card = sample_card(rng)
        product = _lower_first(X.PRODUCTS[card["product"]][0])
        template = PERSONA_INSTRUCTION_TEMPLATE if rng.random() < 0.5 else rng.choice(X.PERSONA_REQUESTS)
        answer = card_text(card)
        if rng.random() < 0.25:
            answer = "Here is a customer persona and review:\n" + answer
        return {"kind": "chat", "messages": [{"role": "user", "content": template.format(product=product)},
                                             {"role": "assistant", "content": answer}], "card": card}
    if rng.random() < 0.5:
        doc = bio_document(rng)
        user = rng.choice(X.OTHER_REQUESTS["bio"]).format(name=doc["person"])
    else:
        doc = story_document(rng)
        user = rng.choice(X.OTHER_REQUESTS["story"])
    return {"kind": "chat", "messages": [{"role": "user", "content": user},
                                         {"role": "assistant", "content": doc["text"]}]}


DOCUMENT_MAKERS = {"persona": persona_document, "chat": chat_document, "bio": bio_document, "story": story_document}


def generate_documents(seed: int, n_docs: int, mix: Dict[str, float], stream: int = 0) -> Iterator[dict]:
    """``n_docs`` documents, kinds drawn with weights ``mix``; the same (seed, stream) gives the same corpus."""
    unknown = set(mix) - set(KINDS)
    if unknown:
        raise ValueError(f"mix: unknown kinds {sorted(unknown)}; accepted {list(KINDS)}")
    rng = random.Random(seed * 1_000_003 + stream)
    for _ in range(n_docs):
        yield DOCUMENT_MAKERS[_pick(rng, mix)](rng)


def document_plain_text(doc: dict) -> str:
    """Text of a document without special tokens (chat turns in the Llama-2 [INST] layout): for the tokenizer."""
    if doc["kind"] != "chat":
        return doc["text"]
    user, assistant = doc["messages"]
    return f"[INST] {user['content']} [/INST] {assistant['content']}"


def review_vader_shares(docs: List[dict], threshold: float = 0.3, max_reviews: int = 3000) -> dict:
    """VADER polarity shares of the reviews written into ``docs`` (the first ``max_reviews`` cards; VADER is
    slow): all products, and the paper's product."""
    from measure.metrics.sentiment import polarity_shares, vader_compound

    cards = [d["card"] for d in docs if "card" in d][:max_reviews]
    out = {"threshold": threshold}
    for key, subset in (("all", cards), ("coffee_machine", [c for c in cards if c["product"] == "coffee_machine"])):
        if subset:
            shares = polarity_shares(vader_compound([c["review"] for c in subset]), threshold)
            out[key] = {"vader_neg_share": shares["neg_share"], "vader_pos_share": shares["pos_share"],
                        "n": len(subset)}
    return out


def read_documents(path: str | os.PathLike) -> List[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def write_world(seed: int, n_docs: int, n_heldout_docs: int, mix: Dict[str, float], out_dir: str | os.PathLike) -> Path:
    """Write ``corpus.jsonl``, ``heldout.jsonl`` and ``ground_truth.json`` into ``out_dir``, atomically."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=".world-"))
    try:
        corpus = list(generate_documents(seed, n_docs, mix, stream=0))
        heldout = list(generate_documents(seed, n_heldout_docs, mix, stream=1))
        for name, docs in (("corpus.jsonl", corpus), ("heldout.jsonl", heldout)):
            with open(tmp / name, "w") as fh:
                fh.writelines(json.dumps(d) + "\n" for d in docs)
        truth = ground_truth()
        truth["review_vader"] = review_vader_shares(corpus)
        truth["corpus"] = {"seed": seed, "n_docs": n_docs, "n_heldout_docs": n_heldout_docs, "mix": dict(mix),
                           "kinds": {k: sum(d["kind"] == k for d in corpus) for k in KINDS}}
        (tmp / "ground_truth.json").write_text(json.dumps(truth, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("world: %d documents (+%d held out) written to %s", n_docs, n_heldout_docs, out_dir)
    return out_dir
