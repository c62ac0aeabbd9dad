"""The one persona-card parser (Experiment 1), plus the card format and the persona prompts.

Everyone who reads a generated customer persona goes through ``parse_persona``: measure's Experiment 1
(Llama-2 outputs), the tiny world's quality check and the PPO diversity callback. It accepts the tiny
world's card format (``format_card``) and the looser shapes a chat model writes: any key case,
``Key: value`` or ``Key - value``, markdown bullets and bold, ``Name: First Last`` split in two, several
fields on one line separated by commas, semicolons or full stops. It never raises on garbage; a field it
cannot read is listed in ``missing``. The same key grammar gives ``field_prefixes`` (a card up to where each
value begins: the contexts of the exact, teacher-forced attribute distributions) and ``field_spans`` (which
characters belong to which field: the per-field breakdown of a sequence KL).

The prompts are defined here, once, because both apps need them and ``measure`` never imports ``rlhf``:
``PERSONA_CARD_PROMPT`` (plain text that a base model continues with a card) and ``PERSONA_INSTRUCTION``
(the paper's Experiment 1 request, sent through the chat template to chat models).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

# The paper's hypothetical product (Section 3.1).
COFFEE_MACHINE = ("A coffee machine that connects to your smartwatch so it keeps your coffee warm "
                  "if you are far away from it.")

# Plain-text prompt: the header of a persona document in the tiny world; a base model continues it
# with "First name: ..." and ends the card with EOS.
PERSONA_CARD_HEADER = "Customer persona\nProduct: {product}\n"
PERSONA_CARD_PROMPT = PERSONA_CARD_HEADER.format(product=COFFEE_MACHINE)

# Chat instruction of Experiment 1: the attributes the paper lists, then the review of its product.
PERSONA_INSTRUCTION_TEMPLATE = (
    "Create a customer persona with a first name, last name, gender, age, nationality, ethnicity and "
    "personality type according to the Myers-Briggs test. Then write this customer's review of a product: "
    "{product} Put each attribute on its own line as 'Attribute: value' and the review last, as 'Review: ...'."
)
PERSONA_INSTRUCTION = PERSONA_INSTRUCTION_TEMPLATE.format(product=COFFEE_MACHINE[0].lower() + COFFEE_MACHINE[1:])

# The persona's fields in the paper's order (Section 3.1), plus the review.
FIELDS = ("first_name", "last_name", "gender", "age", "nationality", "ethnicity", "mbti", "review")
ATTRIBUTES = FIELDS[:-1]  # the categorical attributes whose diversity is measured (everything but the review)
# (field, label) as the tiny world writes a card, in card order. Demographics come before the names so a model
# draws gender and nationality directly (a 3- and a 14-way choice) and the names given them, as the world does;
# with names first, those shares would hinge on a ~700-way name choice being calibrated.
CARD_FIELDS = (
    ("gender", "Gender"),
    ("age", "Age"),
    ("nationality", "Nationality"),
    ("ethnicity", "Ethnicity"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("mbti", "Personality type"),
    ("review", "Review"),
)
MBTI_TYPES = tuple(a + b + c + d for a in "EI" for b in "SN" for c in "TF" for d in "JP")
AGE_RANGE = (1, 120)  # a sane human age, inclusive

# Key spellings seen in the wild, mapped to a field ("name" is split into first and last).
KEY_ALIASES: Dict[str, str] = {
    "first name": "first_name", "firstname": "first_name", "given name": "first_name", "forename": "first_name",
    "last name": "last_name", "lastname": "last_name", "surname": "last_name", "family name": "last_name",
    "full name": "name", "name": "name", "customer name": "name",
    "gender": "gender", "sex": "gender",
    "age": "age",
    "nationality": "nationality", "country": "nationality", "country of origin": "nationality",
    "ethnicity": "ethnicity", "ethnic background": "ethnicity", "ethnic group": "ethnicity", "race": "ethnicity",
    "personality type": "mbti", "personality": "mbti", "mbti": "mbti", "mbti type": "mbti",
    "myers-briggs": "mbti", "myers-briggs type": "mbti", "myers briggs type": "mbti",
    "myers-briggs personality type": "mbti", "myers-briggs type indicator": "mbti", "type": "mbti",
    "review": "review", "product review": "review", "customer review": "review", "their review": "review",
}
GENDER_ALIASES = {
    "male": "Male", "man": "Male", "m": "Male", "boy": "Male",
    "female": "Female", "woman": "Female", "f": "Female", "girl": "Female",
    "non-binary": "Non-binary", "nonbinary": "Non-binary", "non binary": "Non-binary", "nb": "Non-binary",
}
NAME_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "sir"}

_KEYS = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in sorted(KEY_ALIASES, key=len, reverse=True))
# A key starts a line (after bullets, numbering, bold, heading marks) or follows , ; . | inside a line;
# then optional bold, an optional parenthesis ("Personality type (MBTI)"), and ':' or a spaced dash.
_KEY_RE = re.compile(
    r"(?:^|(?<=[,;.|]))[ \t]*(?:[-*\u2022+>#]+[ \t]*|\d+[.)][ \t]+)?(?:\*\*|__)?[ \t]*"
    r"(?P<key>" + _KEYS + r")\b[ \t]*(?:\([^)\n]{0,40}\))?[ \t]*(?:\*\*|__)?[ \t]*"
    r"(?::|[-\u2013\u2014](?=[ \t]))[ \t]*(?:\*\*|__)?",
    re.IGNORECASE | re.MULTILINE,
)
_NAME_RE = re.compile(r"^[^\W\d_][\w'\u2019.\-]*(?: [^\W\d_][\w'\u2019.\-]*){0,3}$")
_MBTI_RE = re.compile(r"\b([EI][SN][TF][JP])(?:-[AT])?\b", re.IGNORECASE)
_WORDS_RE = re.compile(r"^[^\W\d_][\w'\u2019\-]*(?: [^\W\d_][\w'\u2019\-]*){0,4}$")


@dataclass
class ParsedPersona:
    """One card as read from text; a field is None when absent or invalid (then it is in ``missing``)."""

    first_name: Optional[str] = None
    last_name: Optional[str] = None
    gender: Optional[str] = None  # Male | Female | Non-binary
    age: Optional[int] = None
    nationality: Optional[str] = None  # capitalised words ("American")
    ethnicity: Optional[str] = None  # capitalised words ("East Asian")
    mbti: Optional[str] = None  # one of the 16 types, upper case
    review: Optional[str] = None  # whitespace collapsed
    missing: List[str] = field(default_factory=list)  # fields absent or invalid, in card order

    @property
    def ok(self) -> bool:
        """True when every field is present and valid."""
        return not self.missing

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS} | {"ok": self.ok, "missing": list(self.missing)}


def format_card(first_name: str, last_name: str, gender: str, age: int, nationality: str, ethnicity: str,
                mbti: str, review: str) -> str:
    """The tiny world's card: one ``Label: value`` line per field, the review last."""
    values = dict(first_name=first_name, last_name=last_name, gender=gender, age=age, nationality=nationality,
                  ethnicity=ethnicity, mbti=mbti, review=review)
    return "\n".join(f"{label}: {values[name]}" for name, label in CARD_FIELDS)


def _clean(value: str) -> str:
    value = re.sub(r"(\*\*|__|`)", "", value)
    value = re.sub(r"\s+", " ", value).strip()
    return value.strip(" \t\"'\u201c\u201d*").rstrip(".,;:").strip()


def _capitalised(value: str) -> str:
    return " ".join(w[:1].upper() + w[1:].lower() for w in value.split())


def _person_name(value: str) -> Optional[str]:
    value = _clean(value)
    return value if value and _NAME_RE.match(value) else None


def _split_full_name(value: str):
    words = [w for w in _clean(value).split() if w.lower().rstrip(".") not in NAME_TITLES]
    if len(words) < 2:
        return (_person_name(words[0]) if words else None), None
    return _person_name(words[0]), _person_name(" ".join(words[1:]))


def _gender(value: str) -> Optional[str]:
    return GENDER_ALIASES.get(_clean(value).lower())


def _age(value: str) -> Optional[int]:
    match = re.match(r"^\D{0,12}?(\d{1,3})\b", _clean(value))
    if not match:
        return None
    age = int(match.group(1))
    return age if AGE_RANGE[0] <= age <= AGE_RANGE[1] else None


def _words(value: str) -> Optional[str]:
    value = re.split(r"\s*[(\[]", _clean(value), maxsplit=1)[0]  # "Asian (Chinese)" -> "Asian"
    return _capitalised(value) if value and _WORDS_RE.match(value) else None


def _mbti(value: str) -> Optional[str]:
    match = _MBTI_RE.search(value)
    return match.group(1).upper() if match else None


def _review(value: str) -> Optional[str]:
    value = re.sub(r"\s+", " ", re.sub(r"(\*\*|__|`)", "", value)).strip(" \"'\u201c\u201d*")
    return value if re.search(r"[^\W\d_]", value) else None  # final punctuation kept


_VALIDATORS = {"gender": _gender, "age": _age, "nationality": _words, "ethnicity": _words, "mbti": _mbti,
               "review": _review, "first_name": _person_name, "last_name": _person_name}


def parse_persona(text) -> ParsedPersona:
    """Read one persona card from ``text``; the first occurrence of each field wins. Never raises."""
    if not isinstance(text, str):
        return ParsedPersona(missing=list(FIELDS))
    raw: Dict[str, str] = {}
    matches = list(_KEY_RE.finditer(text))
    for i, match in enumerate(matches):
        name = KEY_ALIASES.get(re.sub(r"\s+", " ", match.group("key").lower()))
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[match.end():end]
        if name != "review":
            value = value.split("\n", 1)[0]  # a one-line field ends at its line
            if name in raw or not _clean(value):
                continue
        elif "review" in raw:
            continue
        raw[name] = value
    values: Dict[str, object] = {}
    if "name" in raw:
        values["first_name"], values["last_name"] = _split_full_name(raw.pop("name"))
    for name, value in raw.items():
        parsed = _VALIDATORS[name](value)
        if parsed is not None or values.get(name) is None:
            values[name] = parsed
    missing = [name for name in FIELDS if values.get(name) is None]
    return ParsedPersona(**{k: v for k, v in values.items() if k in FIELDS}, missing=missing)


def _keys(text: str):
    """(field, key start, end of the key and its colon) of every field key in ``text``, in text order; a full-name
    key ("Name:") is the field ``name``."""
    for match in _KEY_RE.finditer(text):
        name = KEY_ALIASES.get(re.sub(r"\s+", " ", match.group("key").lower()))
        yield name, match.start(), len(text[:match.end()].rstrip(" \t"))


def field_prefixes(text) -> Dict[str, str]:
    """For each field, ``text`` up to where its value begins: through its key and colon, trailing spaces cut
    ("Gender: Male\nAge:"), the contexts of a forced choice over the field's values
    (``measure.exact_attributes``). The first key of each field wins, as in ``parse_persona``; the value of a
    full-name key begins with the first name, so "Name:" gives ``first_name``'s prefix (and none for
    ``last_name``)."""
    if not isinstance(text, str):
        return {}
    out: Dict[str, str] = {}
    for name, _, end in _keys(text):
        name = "first_name" if name == "name" else name
        out.setdefault(name, text[:end])
    return out


def field_spans(text) -> List[tuple]:
    """``(field, start, end)`` character spans of ``text``: each key's field runs from the key to the next key
    (so a field's label, value and line break are its own); text before the first key is ``preamble``. Full-name
    keys are ``name``. Spans cover the text without gaps, in text order."""
    if not isinstance(text, str) or not text:
        return []
    keys = list(_keys(text))
    spans = [("preamble", 0, keys[0][1])] if keys and keys[0][1] > 0 else ([] if keys else [("preamble", 0, len(text))])
    for i, (name, start, _) in enumerate(keys):
        spans.append((name, start, keys[i + 1][1] if i + 1 < len(keys) else len(text)))
    return spans
