"""The one persona-card parser: the tiny world's format, Llama-2-chat-style outputs, and garbage."""
from __future__ import annotations

import pytest

from measure.persona_parse import (COFFEE_MACHINE, FIELDS, MBTI_TYPES, PERSONA_CARD_PROMPT, PERSONA_INSTRUCTION,
                                   format_card, parse_persona)

CARD = dict(first_name="Emily", last_name="Wang", gender="Female", age=32, nationality="American",
            ethnicity="East Asian", mbti="INTJ", review="I love it so much. The design is also very nice!")


def test_world_card_round_trip():
    parsed = parse_persona(format_card(**CARD))
    assert parsed.ok and parsed.missing == []
    assert {f: getattr(parsed, f) for f in FIELDS} == CARD


def test_llama2_chat_style_output():
    text = ("Sure! Here is a customer persona:\n\n**Name:** Dr. Samantha Jones\n**Gender:** woman\n"
            "**Age:** 32 years old\n**Nationality:** american\n**Ethnicity:** White (Caucasian)\n"
            "**Personality Type (MBTI):** ENFJ-A (Protagonist)\n\n**Review:**\n"
            "\"As a busy professional, I love this coffee machine!\n\nIt keeps my coffee warm.\"")
    p = parse_persona(text)
    assert p.ok, p.missing
    assert (p.first_name, p.last_name, p.gender, p.age) == ("Samantha", "Jones", "Female", 32)
    assert (p.nationality, p.ethnicity, p.mbti) == ("American", "White", "ENFJ")
    assert p.review == "As a busy professional, I love this coffee machine! It keeps my coffee warm."


def test_dash_separators_bullets_and_case():
    text = ("- FIRST NAME - José\n* last name - García López\n  • Sex - M\n1. Age - 45\n"
            "- Country - Mexican\n- Race - Latino\n- Myers-Briggs type - istp\n- Review - Works fine.")
    p = parse_persona(text)
    assert p.ok, p.missing
    assert (p.first_name, p.last_name, p.gender, p.age, p.mbti) == ("José", "García López", "Male", 45, "ISTP")


def test_fields_on_one_line():
    p = parse_persona("Name: Emily Wang. Gender: female. Age: 32. Nationality: American. Ethnicity: Asian. "
                      "Type: INTJ. Review: Great.")
    assert p.ok, p.missing
    assert (p.first_name, p.last_name, p.ethnicity, p.mbti, p.review) == ("Emily", "Wang", "Asian", "INTJ", "Great.")


def test_missing_and_invalid_fields_are_listed():
    text = format_card(**{**CARD, "mbti": "XYZW", "age": 250}).replace("Gender: Female\n", "")
    p = parse_persona(text)
    assert not p.ok
    assert p.missing == ["gender", "age", "mbti"]
    assert p.mbti is None and p.age is None and p.first_name == "Emily"
    assert parse_persona("Age: thirty\nGender: robot").missing == list(FIELDS)


def test_first_card_wins_and_review_stops_at_next_key():
    two = format_card(**CARD) + "\n" + format_card(**{**CARD, "first_name": "Bob", "review": "Bad."})
    p = parse_persona(two)
    assert p.first_name == "Emily" and p.review == CARD["review"]


@pytest.mark.parametrize("garbage", ["", "   ", "::::", "\x00\x01\xff", "Review:", "Name:", None, 12, b"bytes",
                                     "First name: 123\nLast name: ???", "a" * 10_000])
def test_never_raises_on_garbage(garbage):
    p = parse_persona(garbage)
    assert not p.ok and set(p.missing) <= set(FIELDS) and p.missing


def test_constants():
    assert len(MBTI_TYPES) == 16 and len(set(MBTI_TYPES)) == 16
    assert COFFEE_MACHINE in PERSONA_CARD_PROMPT and PERSONA_CARD_PROMPT.endswith("\n")
    assert "coffee machine that connects to your smartwatch" in PERSONA_INSTRUCTION
    assert "Myers-Briggs" in PERSONA_INSTRUCTION
