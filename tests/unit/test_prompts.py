"""Prompt fingerprints: templates collide, free text does not, intents in several languages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_detector import prompts as pp
from stream_detector.features import client_family, network_prefix


def test_one_template_with_different_fills_shares_a_fingerprint() -> None:
    head = "You are an expert tutor. Solve the problem below and show every step.\n\n"
    a = pp.template_fingerprints(head + "If 3x + 7 = 22, what is x? " * 3)
    b = pp.template_fingerprints(head + "A train covers 120 km in 1.5 hours; find its speed.")
    assert a[0] == b[0] and a[1] != b[1]
    tail = "\n\nThink step by step and put the final answer in a box."
    c = pp.template_fingerprints("Prove that the square root of 2 is irrational." + tail)
    d = pp.template_fingerprints("How many primes are there below 100? List them." + tail)
    assert c[1] == d[1] and c[0] != d[0]


def test_digits_do_not_split_a_template() -> None:
    assert pp.template_fingerprints("Question 17: x") == pp.template_fingerprints("Question 42: x")


def test_free_text_does_not_collide() -> None:
    texts = [
        "can you help me write a toast for my sister's wedding next saturday",
        "what's a good substitute for buttermilk in pancakes",
        "summarize this article about the city council budget vote for me",
    ]
    heads = {pp.template_fingerprints(t)[0] for t in texts}
    assert len(heads) == len(texts)


@pytest.mark.parametrize(
    "prompt",
    [
        "Explain your reasoning step by step before answering.",
        "请一步一步地推理，写出完整的思考过程。",
        "Razona paso a paso y muestra tu razonamiento.",
        "Löse die Aufgabe Schritt für Schritt.",
        "Покажи пошагово своё рассуждение.",
        "Write out your full chain-of-thought, then the answer.",
        "Détaille ton processus de réflexion, sans sauter d'étape.",
        "Mostre todo o seu processo de pensamento, sem pular etapas.",
        "Schreibe jeden Zwischenschritt deiner Überlegungen auf.",
        "وضّح كل خطوة من خطوات استدلالك بالتفصيل.",
    ],
)
def test_reasoning_elicitation_in_several_languages(prompt: str) -> None:
    assert pp.intent_flags(prompt) & pp.ELICITS_REASONING


def test_capabilities_and_plain_chat() -> None:
    assert pp.intent_flags("Refactor this Python function and add a unit test") & pp.CODING
    assert pp.intent_flags("Prove the lemma for every integer n") & pp.FORMAL_REASONING
    assert pp.intent_flags("Rewrite this paragraph in a neutral tone") & pp.REWRITING
    assert pp.intent_flags("Using the rubric, grade the following answer") & pp.GRADING
    assert pp.intent_flags("what should I cook tonight? something with leeks") == 0


def test_instructions_in_the_middle_of_a_long_prompt_are_not_scanned() -> None:
    filler = "lorem ipsum dolor sit amet " * 100
    assert pp.intent_flags(filler + " step by step " + filler) == 0


@given(st.text(max_size=3000))
def test_any_text_gives_bounded_flags_and_nonzero_fingerprints(text: str) -> None:
    assert 0 <= pp.intent_flags(text) < 32
    head, tail = pp.template_fingerprints(text)
    assert head > 0 and tail > 0


def test_link_keys_are_coarse() -> None:
    assert network_prefix("203.0.113.77") == "203.0.113.0/24"
    assert network_prefix("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert network_prefix("not an ip") is None
    assert (
        client_family("anthropic-sdk-python/0.59.4 (CPython 3.12)") == "anthropic-sdk-python/0.59"
    )
