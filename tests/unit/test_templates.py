"""Template structure without a template's exact wording: recurring instruction segments,
the accounts that share them, and who a shared template does not draw in."""

from __future__ import annotations

from stream_detector import prompts as pp
from stream_detector.detector import Detector
from stream_detector.pipeline import Pipeline
from stream_detector.scoring import assess
from stream_detector.state import REPEATS

from .builders import (
    DAY,
    QUESTIONS,
    T0,
    class_session,
    event,
    harvester,
    multipath,
    run,
    templated,
)


def test_one_instruction_behind_different_openings_and_numbers_shares_a_fingerprint() -> None:
    tail = "\nWrite the reasoning as numbered steps, at least eight, then 'Conclusion:'."
    a = pp.template_fingerprints("Item 54304. Why does ice float on water?" + tail)
    b = pp.template_fingerprints(
        "Q7: a 100 V battery drives two resistors; find the current." + tail
    )
    assert a[1] == b[1] and a[0] != b[0]
    lead = "Solve the following, showing every step: "
    openings = ("", "Task: ", "Please help. ", "Question 12.\n", "Q3:\n")
    heads = {
        pp.template_fingerprints(o + lead + f"\n{n}x + 3 = 11")[0] for n, o in enumerate(openings)
    }
    assert len(heads) == 1  # short openings and labels are not segments of their own
    assert pp.template_fingerprints("Solve the following, showing no steps: x")[0] not in heads


def test_cjk_sentences_are_segments_too() -> None:
    tail = "请先写出完整、详细的推理过程，再给出结论。"
    a = pp.template_fingerprints("问题：一个小球从26米高的楼顶竖直向上抛出，多久落地？\n" + tail)
    b = pp.template_fingerprints("问题：同时掷3枚均匀的六面骰子，最大点数的期望值是多少？\n" + tail)
    assert a[1] == b[1]


FREE_TEXT = (
    "can you help me write a toast for my sister's wedding next saturday",
    "what's a good substitute for buttermilk in pancakes",
    "summarize the city council budget vote for me, I missed the meeting",
    "my landlord wants to raise the rent by 12% - is that legal in Oregon?",
    "give me three names for a grey kitten",
    "how long should I boil an egg so the yolk stays soft",
    "why do cats knead blankets",
    "draft a polite note to my neighbour about their dog barking at night",
    "is it worth upgrading from a 2019 laptop for photo editing",
    "what are the rules of pétanque",
)


def test_several_templates_recur_where_free_text_does_not() -> None:
    detector = Detector()
    harvest = [event(i, "op", T0 + i * 60.0, prompt=templated(i)) for i in range(60)]
    chat = [
        event(i, "p", T0 + i * 3600.0, prompt=FREE_TEXT[i % len(FREE_TEXT)] + ("?" * (i // 10)))
        for i in range(30)
    ]
    run(detector, harvest + chat)
    op, p = detector._store.get("op"), detector._store.get("p")
    assert op is not None and p is not None
    assert op.counts[REPEATS] >= 0.8 * 60  # three templates, four openings: all recur
    assert p.counts[REPEATS] == 0  # the same questions again, but further apart than a template
    terms = {t[0]: t for t in assess(op, op.last_ts).terms}
    assert terms["template_repetition"][2] > 0.9


def test_aged_accounts_sharing_only_templates_are_one_campaign() -> None:
    events = list(multipath("m", 8, T0, hours=8))
    alerts = run(Pipeline(), events)
    named = {
        a for alert in alerts if alert.severity in ("high", "critical") for a in alert.accounts
    }
    assert named == {f"m-{k}" for k in range(8)}
    assert any(a.kind == "cluster" for a in alerts)


def test_a_newcomer_trying_a_campaign_template_is_not_drawn_in() -> None:
    events = list(multipath("m", 8, T0, hours=8))
    # A new user on one of the campaign's networks, who once pastes one of its templates
    # among ordinary questions.
    for i, prompt in enumerate(
        [
            "plan a 5-day trip to Lisbon on a budget",
            templated(4),
            "translate to Spanish: the meeting moved to Friday",
            "what's a good substitute for buttermilk?",
        ]
    ):
        events.append(
            event(
                i,
                "newcomer",
                T0 + 3600.0 * (i + 1),
                account_created_ts=T0 - DAY,
                ip="10.1.1.9",
                output_tokens=700,
                prompt=prompt,
            )
        )
    alerts = run(Pipeline(), events)
    assert not [
        a for a in alerts if "newcomer" in a.accounts and a.severity in ("high", "critical")
    ]
    assert any(a.kind == "cluster" for a in alerts)


def test_a_class_on_one_assignment_is_not_a_campaign() -> None:
    alerts = run(Pipeline(), list(class_session("cls", 40, T0)))
    assert not [a for a in alerts if a.severity in ("high", "critical")]


def test_a_sustained_harvester_reaches_high_on_its_own() -> None:
    events = [dict(e, account_created_ts=T0 - 60 * DAY) for e in harvester("h", T0, 30, 30)]
    alerts = run(Detector(), events)
    assert any(a.severity in ("high", "critical") for a in alerts)


def tag(k: int, j: int) -> str:
    """A word of letters unique to (k, j) (digits fold: they would make one template)."""
    return "".join(chr(97 + (k * 3 + j) // 26**i % 26) for i in range(3))


def test_a_swarm_made_at_once_behind_a_router_is_found_its_neighbours_are_not() -> None:
    """Throwaway accounts without cards, made within minutes of their first calls and calling
    through a router's egress that its own customers share: the creation cohort on that
    network ties the swarm, not the customers."""
    events = []
    for k in range(60):
        start = T0 + k * 50.0
        for j in range(3):
            events.append(
                event(
                    j,
                    f"s{k}",
                    start + j * 90.0,
                    account_created_ts=start - 300.0,
                    ip=f"203.0.113.{k % 4 + 1}",
                    user_agent="relay-gateway/2.1",
                    output_tokens=1800,
                    max_tokens=4096,
                    # nothing in common: each account words its question and coercion its own
                    prompt=f"{QUESTIONS[(k + j) % len(QUESTIONS)].format(n=tag(k, j))}\n"
                    f"Show your reasoning step by step, variant {tag(k, j)}.",
                )
            )
    for k in range(30):  # the router's own customers, same egress, ordinary use
        for j in range(3):
            events.append(
                event(
                    j,
                    f"c{k}",
                    T0 + k * 97.0 + j * 400.0,
                    account_created_ts=T0 - (40 + k) * DAY,
                    ip=f"203.0.113.{k % 4 + 1}",
                    user_agent="relay-gateway/2.1",
                    output_tokens=450,
                    prompt=FREE_TEXT[(k + j) % len(FREE_TEXT)],
                )
            )
    alerts = run(Pipeline(), events)
    named = {
        a for alert in alerts if alert.severity in ("high", "critical") for a in alert.accounts
    }
    assert len({a for a in named if a.startswith("s")}) >= 54
    assert not {a for a in named if a.startswith("c")}
