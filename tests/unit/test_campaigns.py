"""Campaign linking: hydra clusters are found as one campaign; shared offices are not."""

from __future__ import annotations

import random
from collections.abc import Callable

from stream_detector.campaigns import Campaign, assess_group
from stream_detector.config import DetectorConfig
from stream_detector.detector import Detector
from stream_detector.pipeline import Pipeline
from stream_detector.snapshot import AccountSnapshot, harvest_like

from .builders import (
    DAY,
    T0,
    class_session,
    event,
    harvester,
    hydra,
    hydra_call,
    multipath,
    office,
    person,
    resumed,
    run,
    templated,
)


def test_hydra_cluster_is_one_campaign_naming_its_members() -> None:
    events = list(hydra("h", 12, T0, hours=6))
    alerts = run(Pipeline(track_dirty=True), events)
    clusters = [a for a in alerts if a.kind == "cluster"]
    assert clusters, "no cluster alert"
    assert len({a.subject for a in clusters}) == 1
    top = max(clusters, key=lambda a: (a.score, a.accounts_total))
    # The cluster is high as soon as the evidence is there (five accounts in; it pages once
    # its harvest is of consequence, see below); members who join later are named by their own
    # alerts.
    assert top.severity in ("high", "critical") and 5 <= top.accounts_total <= 12
    assert set(top.accounts) <= {f"h-{k}" for k in range(12)}
    assert len(top.accounts) == top.accounts_total
    signals = {r["signal"] for r in top.reasons}
    assert "shared_pay" in signals or "shared_key_kinds" in signals
    members = {a.subject for a in alerts if a.kind == "account" and a.severity == "high"}
    assert members == {f"h-{k}" for k in range(12)}
    assert not [a for a in alerts if a.kind == "account" and a.severity == "critical"]


def test_each_hydra_account_alone_stays_below_high() -> None:
    events = [e for e in hydra("h", 12, T0, hours=6) if e["account_id"] == "h-0"]
    assert not [
        a for a in run(Pipeline(track_dirty=True), events) if a.severity in ("high", "critical")
    ]


def test_office_sharing_ip_and_card_and_neighbours_are_not_alerted() -> None:
    events = list(office("acme", 25, T0, days=2))
    events += [dict(e, ip="203.0.113.50") for k in range(10) for e in person(f"n{k}", T0, 2)]
    assert run(Pipeline(track_dirty=True), events) == []


def test_campaign_state_survives_a_checkpoint() -> None:
    events = sorted(hydra("h", 12, T0, hours=6), key=lambda e: e["ts"])
    cut = len(events) // 3
    expected = [a.alert_id for a in run(Pipeline(track_dirty=True), events)]
    first = Pipeline(track_dirty=True)
    got = [a.alert_id for a in run(first, events[:cut])]
    got += [a.alert_id for a in run(resumed(first), events[cut:])]
    assert got == expected


def test_without_prompt_text_long_answers_stand_in_for_what_is_asked() -> None:
    """A no-logging policy strips the prompts: a hydra without `thinking` still harvests long
    answers on shared cards and is found; an office without prompts is not."""
    strip = ("prompt", "thinking")
    events = [{k: v for k, v in e.items() if k not in strip} for e in hydra("h", 12, T0, hours=6)]
    events += [{k: v for k, v in e.items() if k not in strip} for e in office("acme", 12, T0, 2)]
    alerts = run(Pipeline(track_dirty=True), events)
    named = {
        a for alert in alerts if alert.severity in ("high", "critical") for a in alert.accounts
    }
    assert named == {f"h-{k}" for k in range(12)}


def test_a_campaigns_card_draws_a_new_holder_in_at_its_first_calls() -> None:
    """Once a card pays for a campaign, a new account on it with long answers is a member
    from its first evidence, not from the card group's next look (which may be ten minutes
    away: the group was just looked at and has not grown by half)."""
    pipeline = Pipeline(track_dirty=True)
    run(pipeline, list(hydra("h", 12, T0, hours=3)))
    linker = pipeline.stage.linker
    card = next(g for g in linker._groups.values() if g.campaign and g.key & 7 == 0)
    late = T0 + 3 * 3600.0
    card.evaluated_ts, card.next_size = late, card.total * 2  # just looked at
    holder = next(iter(card.members))
    newcomer = [
        dict(
            event(0, "newcomer", late + 10.0, account_created_ts=late - 600),
            payment_fingerprint=next(
                e["payment_fingerprint"]
                for e in hydra("h", 12, T0, hours=0.2)
                if e["account_id"] == holder
            ),
            output_tokens=3000,
            max_tokens=4096,
            prompt="Summarise chapter 3 of the handbook in detail.",
        )
    ]
    alerts = run(pipeline, newcomer)
    assert linker.campaign_of.get("newcomer") == card.campaign
    assert [a.reasons[0]["signal"] for a in alerts if a.subject == "newcomer"] == [
        "campaign_member"
    ]


def _newcomer(name: str, start: float, turns: int) -> list[dict[str, object]]:
    """A young account on the hydra's network (its own card, client and questions) getting
    long reasoning answers, in single calls or (`turns`) mostly in conversations."""
    return [
        event(
            i,
            name,
            start + i * 900.0,
            account_created_ts=start - 600,
            payment_fingerprint=f"{name}-card",
            ip="198.51.100.200",
            user_agent="litellm/1.57.1",
            output_tokens=2500,
            max_tokens=4096,
            thinking=True,
            conversation_turns=1 + (i % 3 > 0) * turns,
            prompt=f"{name} question {i}: how do tides work on a planet with {i} moons?",
        )
        for i in range(8)
    ]


def test_a_network_of_harvesters_ties_young_single_call_harvesters_on_it() -> None:
    """A network nearly all of whose holders harvest (a router a swarm goes through) ties a
    young account harvesting long answers in single calls, with no second shared key; a
    young account on it holding conversations (most of its calls) with long answers is not
    drawn in."""
    late = T0 + 2 * 3600.0
    events = list(hydra("h", 12, T0, hours=5))
    events += _newcomer("swarmer", late, turns=0) + _newcomer("chatter", late, turns=4)
    events += [
        {**e, "account_created_ts": late - 300 * 86400.0, "prompt": _TOPICS[i]}
        for i, e in enumerate(_newcomer("aged", late, 0))
    ]
    pipeline = Pipeline(track_dirty=True)
    run(pipeline, sorted(events, key=lambda e: float(str(e["ts"]))))
    campaign_of = pipeline.stage.linker.campaign_of
    assert campaign_of.get("swarmer") is not None
    assert campaign_of.get("swarmer") == campaign_of.get("h-0")
    assert "chatter" not in campaign_of
    assert "aged" not in campaign_of  # a network's other holders may be anyone


def test_a_system_prompt_of_harvesters_ties_single_call_harvesters_young_or_aged() -> None:
    """A system prompt nearly all of whose holders harvest is an operation's own: it ties an
    account harvesting long answers in single calls from elsewhere (its own card, network,
    client and questions), young or aged (an operation's prompt is nobody else's, while a
    residential network's other holders may be anyone); one on it mostly in conversations
    is not drawn in."""
    late = T0 + 2 * 3600.0
    events = [{**e, "system_hash": "op-prompt"} for e in hydra("h", 12, T0, hours=5)]
    for name, turns in (("swarmer", 0), ("chatter", 4), ("aged", 0)):
        events += [
            {**e, "ip": f"192.0.2.{len(name)}", "system_hash": "op-prompt"}
            for e in _newcomer(name, late, turns=turns)
        ]
    for i, e in enumerate(e for e in events if e["account_id"] == "aged"):
        e.update(account_created_ts=late - 300 * 86400.0, prompt=_TOPICS[i])
    pipeline = Pipeline(track_dirty=True)
    run(pipeline, sorted(events, key=lambda e: float(str(e["ts"]))))
    campaign_of = pipeline.stage.linker.campaign_of
    assert campaign_of.get("swarmer") == campaign_of["h-0"]
    assert campaign_of.get("aged") == campaign_of["h-0"]
    assert "chatter" not in campaign_of


def _throwaways(name: str, accounts: int, answer: int, turns: int) -> list[dict[str, object]]:
    """Accounts made minutes before their first call that take turns on one residential
    prefix (a proxy's exit), two hours apart, each with its own client and questions, a few
    calls each asking for written-out reasoning and getting `answer` tokens; every third
    call carries `turns` of conversation."""
    events: list[dict[str, object]] = []
    for k in range(accounts):
        start = T0 + k * 7200.0
        events += [
            event(
                i,
                f"{name}-{k}",
                start + i * 240.0,
                account_created_ts=start - 600,
                ip=f"203.0.113.{10 + 7 * k}",
                user_agent=f"client-{name}-{k}/1.{k}",
                output_tokens=answer,
                max_tokens=32000,
                thinking=True,
                conversation_turns=turns if i % 3 == 2 else 1,
                prompt=_ASKS[k % len(_ASKS)].format(_TOPICS[(k * 6 + i) % len(_TOPICS)]),
            )
            for i in range(6)
        ]
    return events


_ASKS = [
    "{} Show your reasoning step by step.",
    "Walk me through it in full: {}",
    "{} Think out loud and show every step before the final answer.",
    "From first principles, and explaining your chain of thought as you go: {}",
    "Reason through this one carefully, each step numbered. {}",
]
_TOPICS = [
    f"{verb} {thing}."
    for verb in ["Prove", "Derive", "Explain", "Estimate", "Compare", "Design"]
    for thing in [
        "tides",
        "orbits",
        "prisms",
        "levers",
        "glaciers",
        "enzymes",
        "markets",
        "compilers",
    ]
]


def test_a_prefix_that_throwaway_harvesters_take_turns_on_is_their_campaign() -> None:
    """A network prefix whose every holder is a young account harvesting long answers, mostly
    in single calls, is a campaign's by itself, though the accounts share nothing else and
    are never on it at once (a swarm's proxy exit); young accounts on it that chat, or hold
    conversations, are not."""

    def linked(events: list[dict[str, object]]) -> dict[str, str]:
        pipeline = Pipeline(track_dirty=True)
        run(pipeline, sorted(events, key=lambda e: float(str(e["ts"]))))
        return pipeline.stage.linker.campaign_of

    swarm = linked(_throwaways("s", 4, answer=1500, turns=3))
    assert set(swarm) == {f"s-{k}" for k in range(4)}
    assert len(set(swarm.values())) == 1
    assert linked(_throwaways("c", 4, answer=400, turns=3)) == {}
    talkers = _throwaways("v", 4, answer=1500, turns=3)
    for e in talkers:  # two calls in three continue a conversation
        e["conversation_turns"] = 3 if int(str(e["event_id"]).rsplit("-", 1)[1]) % 3 else 1
    assert linked(talkers) == {}


def _card_sharers(name: str, accounts: int, harvest_tokens: int) -> list[dict[str, object]]:
    """Young accounts on one card, each on its own network and client, mostly asking chat
    questions; every fourth call asks for a written-out proof and gets `harvest_tokens`."""
    events: list[dict[str, object]] = []
    for k in range(accounts):
        account = f"{name}-{k}"
        for j in range(24):
            big = j % 4 == 3
            events.append(
                event(
                    len(events),
                    account,
                    T0 + k * 300.0 + j * 600.0,
                    account_created_ts=T0 - 3 * 86400,
                    payment_fingerprint=f"{name}-card",
                    ip=f"192.0.2.{k + 1}",
                    user_agent=f"client-{k}/1.0",
                    output_tokens=harvest_tokens if big else 300,
                    max_tokens=32000 if big else 1024,
                    thinking=big,
                    prompt=f"Prove lemma {j} rigorously, writing out every step of the reasoning."
                    if big
                    else f"{account}: what can I cook tonight with {j} eggs and some rice?",
                )
            )
    return events


def test_a_card_whose_holders_take_huge_answers_between_chat_is_a_campaign() -> None:
    """A reseller's accounts pass their customers' chat through between harvests: a quarter
    of their calls ask for reasoning, but their answers average thousands of tokens. Their
    shared card makes them one campaign; the same card with chat-length proofs does not."""
    reseller = run(Pipeline(track_dirty=True), _card_sharers("r", 5, harvest_tokens=24000))
    named = {a.subject for a in reseller if a.kind == "account" and a.severity == "high"}
    assert named == {f"r-{k}" for k in range(5)}
    assert any(a.kind == "cluster" for a in reseller)
    family = run(Pipeline(track_dirty=True), _card_sharers("f", 5, harvest_tokens=900))
    assert not [a for a in family if a.severity in ("high", "critical")]


def _after_hydra() -> tuple[Pipeline, float]:
    """A pipeline that has seen three hours of a 12-account hydra (cards `h-card-0` and
    `h-card-1`), and the time its traffic ends."""
    pipeline = Pipeline(track_dirty=True)
    run(pipeline, list(hydra("h", 12, T0, hours=3)))
    return pipeline, T0 + 3 * 3600.0


def _on_card(
    account: str, card: str, at: float, i: int, tokens: int = 300, created: float | None = None
) -> dict[str, object]:
    """The `i`-th call, five minutes apart from `at`, of an account on `card` (made ten
    minutes before `at` unless `created`), asking a chat question."""
    return event(
        i,
        account,
        at + i * 300.0,
        account_created_ts=at - 600 if created is None else created,
        payment_fingerprint=card,
        output_tokens=tokens,
        max_tokens=32000,
        prompt=f"{account}: what should I cook tonight with {i} eggs?",
    )


def test_a_huge_answer_on_a_campaigns_card_draws_its_holder_in_at_once() -> None:
    """A reseller's account that starts with its customers' chat is drawn in by the card it
    shares with a campaign at its first huge answer, not at its next scoring (on a card not
    mostly the campaign's, whose chatting holders stay out)."""
    pipeline, late = _after_hydra()
    run(pipeline, [_on_card(f"chat-{k}", "h-card-0", late, i) for k in range(8) for i in range(5)])
    run(pipeline, [_on_card("late", "h-card-0", late, i) for i in range(5)])
    assert "late" not in pipeline.stage.linker.campaign_of  # chat so far
    alerts = run(pipeline, [_on_card("late", "h-card-0", late, 5, tokens=20000)])
    assert "late" in pipeline.stage.linker.campaign_of
    assert [a.severity for a in alerts if a.subject == "late"] == ["high"]


def _second_card(ip_of: Callable[[int], str], at: float) -> list[dict[str, object]]:
    """Four aged accounts on a card of their own, each asking for one 3,000-word guide."""
    return [
        event(
            k,
            f"b-{k}",
            at + k * 120.0,
            account_created_ts=at - 60 * 86400.0,
            payment_fingerprint="card-b",
            ip=ip_of(k),
            user_agent=f"client-{k}/2.0",
            output_tokens=9000,
            max_tokens=32000,
            prompt=f"Write a comprehensive guide to topic {k}, at least 3000 words.",
        )
        for k in range(4)
    ]


def test_a_card_whose_holders_call_from_a_campaigns_servers_is_the_campaigns() -> None:
    """A reseller pays with several cards from the same servers: a card whose few holders
    alone are no candidate joins the campaign that most of them reach through its network.
    The same card's holders on networks of their own stay out."""
    pipeline, late = _after_hydra()
    linker = pipeline.stage.linker
    alerts = run(pipeline, _second_card(lambda k: f"198.51.100.{20 + k}", late))
    hydra_campaign = linker.campaign_of["h-0"]
    assert {linker.campaign_of.get(f"b-{k}") for k in range(4)} == {hydra_campaign}
    assert {a.subject for a in alerts if a.severity == "high"} == {f"b-{k}" for k in range(4)}
    pipeline, late = _after_hydra()
    run(pipeline, _second_card(lambda k: f"203.0.{k}.9", late))
    assert not [k for k in range(4) if f"b-{k}" in pipeline.stage.linker.campaign_of]


def test_answers_cut_short_by_a_small_budget_do_not_draw_an_account_in() -> None:
    """Students on the hydra's reasoning template, one call each, answers of 1,024 tokens:
    with the exercise tool's 1,024-token budget the answers filled it (cut short, not long)
    and nobody is drawn in; asking room for 16,000 tokens, they would be."""

    def students(budget: int, at: float) -> list[dict[str, object]]:
        return [
            event(
                k,
                f"s-{k}",
                at + k * 30.0,
                account_created_ts=at - 86400.0,
                payment_fingerprint=f"card-{k}",
                ip=f"203.0.113.{k}",
                user_agent="python-requests/2.32.3",
                output_tokens=1024,
                max_tokens=budget,
                prompt=f"Q{k}: integrate x^{k % 9} e^x dx. Explain your reasoning step by step.",
            )
            for k in range(8)
        ]

    drawn = {}
    for budget in (1024, 16000):
        pipeline, late = _after_hydra()
        run(pipeline, students(budget, late))
        campaign_of = pipeline.stage.linker.campaign_of
        drawn[budget] = sum(1 for k in range(8) if f"s-{k}" in campaign_of)
    assert drawn[1024] == 0
    assert drawn[16000] >= 5


def test_a_holder_tied_to_a_campaign_is_drawn_in_at_its_own_evidence() -> None:
    """Young harvesters arriving one a minute on the hydra's network and template, each with
    a card of its own: the first makes the network's group look again and is drawn in; the
    next ones are judged at their own evidence, not left for the group's next look (a swarm's
    accounts stop after a few calls)."""
    pipeline, late = _after_hydra()
    linker = pipeline.stage.linker
    hydra_campaign = linker.campaign_of["h-0"]
    for k in range(3):
        account = f"late-{k}"
        call = hydra_call(900 + k, account, late + 60.0 * k, late - 7200.0, f"own-{k}", 40 + k)
        run(pipeline, [call])
        assert linker.campaign_of.get(account) == hydra_campaign


def test_reasoning_asked_in_every_single_call_commits_an_account_with_shorter_answers() -> None:
    """A throwaway account on the hydra's network and template asking for written-out
    reasoning in every call, one call at a time, with 700-token answers is drawn in: coerced
    reasoning traces need not be long. The same answers with a chat question among them
    (a person on a popular prompt) are not enough."""

    def calls(account: str, chat_at: int | None) -> list[dict[str, object]]:
        return [
            event(
                i,
                account,
                late + 600.0 + i * 90.0,
                account_created_ts=late - 600.0,
                ip="198.51.100.77",
                user_agent="python-httpx/0.27.0",
                output_tokens=700,
                max_tokens=4096,
                thinking=i != chat_at,
                prompt="Thanks! And what should I cook tonight?"
                if i == chat_at
                else f"Q{700 + i}: integrate x^{i} e^x dx. Explain your reasoning step by step.",
            )
            for i in range(4)
        ]

    pipeline, late = _after_hydra()
    run(pipeline, calls("coerced", None))
    run(pipeline, calls("person", 0))
    campaign_of = pipeline.stage.linker.campaign_of
    assert campaign_of.get("coerced") == campaign_of["h-0"]
    assert "person" not in campaign_of


def test_an_old_account_counts_as_harvesting_only_after_more_than_one_long_answer() -> None:
    """One long rewrite from a years-old account says little of what it does."""
    detector = Detector()
    start = T0 + 400 * 86400.0

    def call(i: int) -> dict[str, object]:
        return event(
            i,
            "old",
            start + i * 600.0,
            account_created_ts=T0,
            output_tokens=1024,
            max_tokens=4096,
            prompt=f"rewrite my cover letter intro, version {i}: I am a diligent engineer.",
        )

    run(detector, [call(0)])
    state = detector._store.get("old")
    assert state is not None
    assert not harvest_like(AccountSnapshot.of(state), state.last_ts)
    run(detector, [call(1)])
    assert harvest_like(AccountSnapshot.of(state), state.last_ts)


def test_a_card_mostly_held_by_a_campaign_draws_in_its_chatting_holders_too() -> None:
    """Most holders of one of the hydra's cards are its members: a new holder with only chat
    on it is the operator's too. Twenty students on a card that one of the hydra's accounts
    also used are not drawn in: the card is mostly theirs."""
    pipeline, late = _after_hydra()
    # one of the hydra's accounts pays a few harvests with the instructor's card
    strays = [
        dict(e, ts=late + k * 60.0, event_id=f"stray-{k}", payment_fingerprint="class-card")
        for k, e in enumerate(e for e in hydra("h", 12, T0, hours=1) if e["account_id"] == "h-0")
    ][:3]
    then = late + 600.0

    def chat(account: str, card: str, i: int) -> dict[str, object]:
        return _on_card(account, card, then, i)

    events = strays + [chat("reseller-customer", "h-card-1", i) for i in range(5)]
    events += [chat(f"student-{k}", "class-card", i) for k in range(20) for i in range(5)]
    # and twenty chatting accounts arriving on the hydra's other card: those drawn in never
    # count towards drawing in the next (six harvesting holders draw in at most five)
    events += [chat(f"crowd-{k}", "h-card-0", i) for k in range(20) for i in range(5)]
    run(pipeline, events)
    linker = pipeline.stage.linker
    assert linker.campaign_of.get("reseller-customer") == linker.campaign_of["h-0"]
    assert not [k for k in range(20) if f"student-{k}" in linker.campaign_of]
    assert 0 < len([k for k in range(20) if f"crowd-{k}" in linker.campaign_of]) <= 5


def test_an_account_on_a_campaigns_card_is_drawn_in_at_its_first_call() -> None:
    """The account side tells the stage the card of an account without an org at its first
    call (the card alone), so a reseller's account starting with its customers' chat joins
    the campaign its card pays for at once, young or aged; a verified org's account does
    not."""
    pipeline, late = _after_hydra()
    aged = late - 100 * 86400.0
    old = _on_card("old", "h-card-1", late, 0, created=aged)
    run(pipeline, [_on_card("young", "h-card-1", late, 0), old])
    staff = _on_card("staff", "h-card-1", late, 0, created=aged)
    run(pipeline, [{**staff, "org_id": "org-acme"}])
    campaign_of = pipeline.stage.linker.campaign_of
    assert campaign_of.get("young") == campaign_of["h-0"]
    assert campaign_of.get("old") == campaign_of["h-0"]
    assert "staff" not in campaign_of


def test_a_groups_answers_of_many_thousand_tokens_weigh_more_than_long_ones() -> None:
    """Mean answers past 2,000 tokens (a reseller's harvests) add weight, up to 1.8 at
    twice that; below, the long-answer scale holds as it was."""
    detector = Detector()

    def snapshots(tokens: int) -> list[AccountSnapshot]:
        out = []
        for k in range(4):
            account = f"g{tokens}-{k}"
            run(detector, [{**e, "output_tokens": tokens} for e in harvester(account, T0, 1, 6)])
            state = detector._store.get(account)
            assert state is not None
            out.append(AccountSnapshot.of(state))
        return out

    def weight(tokens: int) -> float:
        _, terms = assess_group("pay", 4, snapshots(tokens), T0 + 3600.0)
        return next(w for name, _, w in terms if name == "group_output_tokens")

    assert weight(1000) == 0.0
    assert abs(weight(2000) - 1.2) < 1e-9
    assert abs(weight(2828) - (1.2 + 0.6 * 0.5)) < 1e-3
    assert abs(weight(4000) - 1.8) < 1e-9 and weight(9000) == 1.8


def _on_templates(
    account: str, talks: bool, start: float, output_tokens: int = 4000, stride: int = 7
) -> list[dict[str, object]]:
    """Six calls of an aged account of its own (card, network, client) on an operation's
    reasoning templates (the i-th prompt `templated(i * stride + 1)`), with long answers;
    two in three continue a conversation if it `talks`."""
    return [
        event(
            i,
            account,
            start + i * 1200.0,
            account_created_ts=start - 300 * 86400.0,
            payment_fingerprint=f"{account}-card",
            ip=f"172.16.{i}.9",
            user_agent=f"{account}-app/2.0",
            output_tokens=output_tokens,
            max_tokens=8192,
            conversation_turns=3 if talks and i % 3 else 1,
            prompt=templated(i * stride + 1),
        )
        for i in range(6)
    ]


def test_people_in_conversations_on_an_operations_template_are_not_drawn_in() -> None:
    """An operation's reasoning template ties the accounts that harvest with it in single
    calls; someone holding conversations on the same template (a popular prompt, pasted
    into a chat) is not drawn in by the template alone."""
    pipeline = Pipeline()
    events = list(multipath("m", 8, T0, hours=4))
    events += _on_templates("talker", True, T0 + 2 * 3600.0)
    events += _on_templates("single", False, T0 + 2 * 3600.0)
    run(pipeline, sorted(events, key=lambda e: float(e["ts"])))
    campaign_of = pipeline.stage.linker.campaign_of
    assert {campaign_of.get(f"m-{k}") for k in range(8)} == {campaign_of["m-0"]}
    assert "talker" not in campaign_of
    assert campaign_of.get("single") == campaign_of["m-0"]  # the rule, not the traffic


def test_a_young_account_harvesting_agent_runs_in_single_calls_is_drawn_in_by_a_template() -> None:
    """An agent tool's prompt is every user's of the tool, so an agentic account needs a
    second tie to an operation's reasoning template; not a young one that harvests with
    it in single calls, each with the tools and a long answer (a swarm harvesting agent
    runs, one throwaway account after another). An aged account calling so is left to its
    other keys."""
    pipeline = Pipeline()
    start = T0 + 2 * 3600.0
    young = [
        {**c, "account_created_ts": start - 3600.0, "tools": 4}
        for c in _on_templates("young", False, start)
    ]
    aged = [{**c, "tools": 4} for c in _on_templates("aged", False, start + 30.0)]
    events = [*multipath("m", 8, T0, hours=4), *young, *aged]
    run(pipeline, sorted(events, key=lambda e: float(str(e["ts"]))))
    campaign_of = pipeline.stage.linker.campaign_of
    assert campaign_of.get("young") == campaign_of["m-0"]
    assert "aged" not in campaign_of


def test_one_call_on_an_operations_template_does_not_tie_an_account_to_it() -> None:
    """A first call on an operation's reasoning template may be a newcomer trying a popular
    prompt once (in the adversarial blind traffic, 3-5 new users per set were drawn in so):
    the template alone ties an account from its second such call."""
    pipeline = Pipeline()
    events = list(multipath("m", 8, T0, hours=4))
    start = T0 + 2 * 3600.0
    calls = [
        {**c, "account_created_ts": start - 3600.0}  # made an hour before
        for c in _on_templates("newcomer", False, start)
    ]
    run(pipeline, sorted([*events, calls[0]], key=lambda e: float(e["ts"])))
    campaign_of = pipeline.stage.linker.campaign_of
    assert "newcomer" not in campaign_of
    run(pipeline, [calls[1]])
    assert campaign_of.get("newcomer") == campaign_of["m-0"]


def test_an_aged_account_reasoning_on_an_operations_templates_is_drawn_in_at_its_4th_call() -> None:
    """An aged account of the operation's with answers of 900 tokens (more than chat, not
    long) asking for reasoning in every single call on its templates: its first three calls
    may be anyone's, its fourth shows a harvest and draws it in. With chat-length answers of
    700 tokens, or with another question among its calls (a student's exercise tool asks
    other things too), it stays out."""
    pipeline = Pipeline()
    start = T0 + 2 * 3600.0
    # One template in every third prompt: it recurs in the account's first four.
    steady = _on_templates("steady", False, start, output_tokens=900, stride=3)
    chatty = _on_templates("chatty", False, start + 30.0, output_tokens=700, stride=3)
    mixed = _on_templates("mixed", False, start + 60.0, output_tokens=900, stride=3)
    mixed[1] = {**mixed[1], "prompt": "Which of these two openings reads better, and why?"}
    events = [*multipath("m", 8, T0, hours=4), *steady[:3], *chatty, *mixed]
    run(pipeline, sorted(events, key=lambda e: float(e["ts"])))
    campaign_of = pipeline.stage.linker.campaign_of
    assert "steady" not in campaign_of
    run(pipeline, [steady[3]])
    assert campaign_of.get("steady") == campaign_of["m-0"]
    assert "chatty" not in campaign_of
    assert "mixed" not in campaign_of


def test_a_candidate_group_does_not_start_a_campaign_of_fewer_than_three() -> None:
    """A group that is a candidate but not suspicious on its own starts no campaign with the
    one or two holders it could draw in (in the blind traffic a class's card did, and a
    template shared with a hydra later merged that campaign into the hydra's). Here a class
    two of whose students got a long first answer: with the thresholds raised its groups
    are candidates only, and nobody is linked; at the default ones they are suspicious, and
    the two are (the class's app leaving room for long answers: on a small budget nobody
    is linked at either)."""
    raised = DetectorConfig(
        threshold_low=0.9, threshold_medium=0.93, threshold_high=0.96, threshold_critical=0.99
    )

    def linked(config: DetectorConfig) -> set[str]:
        events = sorted(class_session("cls", 20, T0), key=lambda e: float(e["ts"]))
        for e in events:
            e["max_tokens"] = 8192
        for student in ("cls-3", "cls-11"):
            next(e for e in events if e["account_id"] == student)["output_tokens"] = 1024
        pipeline = Pipeline(config)
        run(pipeline, events)
        return set(pipeline.stage.linker.campaign_of)

    assert linked(raised) == set()
    assert linked(DetectorConfig()) == {"cls-3", "cls-11"}


def test_accounts_one_scheduler_drives_in_lock_step_are_one_campaign() -> None:
    """Aged accounts sharing nothing but templates, modest each (3.5 calls an hour, answers
    of 1,150 tokens, barely long): firing within seconds of each other, call after call,
    they are one campaign, with the lock-step in its evidence; the same accounts taking
    turns are not linked at all (their templates alone are not enough)."""

    def campaigns(apart_s: float) -> list[Campaign]:
        pipeline = Pipeline()
        events = multipath("s", 7, T0, 4.0, gap=1020.0, apart=apart_s, output_tokens=1150)
        run(pipeline, sorted(events, key=lambda e: float(e["ts"])))
        return list(pipeline.stage.linker.campaigns.values())

    (together,) = campaigns(3.0)
    assert set(together.members) == {f"s-{k}" for k in range(7)}
    assert "group_lockstep" in {name for name, _, _ in together.terms}
    assert campaigns(145.0) == []


def test_scheduled_bursts_are_one_campaign_within_their_first_hour() -> None:
    """Aged accounts sharing only templates, in bursts of four calls every 12 minutes
    (answers of 1,150 tokens): their early evidence (the first eight calls, 15 minutes) is
    too short for lock-step and their next re-score is an hour away. Each tells its groups
    again once its minute mask spans 50 minutes, and within the hour they are one campaign
    at high."""
    pipeline = Pipeline()
    events = multipath(
        "b", 8, T0, 1.0, gap=720.0, apart=3.0, output_tokens=1150, burst=(0.0, 60.0, 120.0, 180.0)
    )
    alerts = run(pipeline, sorted(events, key=lambda e: float(e["ts"])))
    named = {
        account
        for alert in alerts
        if alert.severity in ("high", "critical") and alert.event_ts < T0 + 3600.0
        for account in alert.accounts
    }
    assert named == {f"b-{k}" for k in range(8)}


def test_one_heavy_holder_does_not_make_a_groups_volume() -> None:
    """A class's five accounts at six calls an hour, and an aged batch job on their exercise
    template at 600: the group's volume and answers are the class's, the batch job counting
    for at most four times a typical holder."""
    detector = Detector()

    def snapshot(account: str, per_hour: int, tokens: int) -> AccountSnapshot:
        events = [{**e, "output_tokens": tokens} for e in harvester(account, T0, 1, per_hour)]
        run(detector, events)
        state = detector._store.get(account)
        assert state is not None
        return AccountSnapshot.of(state)

    def values(snaps: list[AccountSnapshot]) -> dict[str, float]:
        _, terms = assess_group("tpl", len(snaps), snaps, T0 + 3600.0)
        return {name: value for name, value, _ in terms}

    students = [snapshot(f"s{k}", 6, 600) for k in range(6)]
    batch = snapshot("batch", 600, 1500)
    alone = values(students[:5])
    joined = values([*students[:5], batch])
    # calls an hour, long answers counted by output (400 tokens a call): 135, not 2,295
    assert abs(alone["group_volume"] - 30 * 600 / 400) < 1e-6
    assert abs(joined["group_volume"] - (30 * 600 + 24 * 1500) / 400) < 1e-6
    assert abs(joined["group_output_tokens"] - (30 * 600 + 24 * 1500) / 54) < 1e-6
    # holders alike are counted in full
    assert abs(values(students)["group_volume"] - 6 / 5 * alone["group_volume"]) < 1e-6


def test_campaigns_on_the_same_client_library_stay_apart() -> None:
    """Two operations with cards, networks and templates of their own, both on the same
    HTTP library release: the client ties nobody, and does not merge them either."""
    events = list(hydra("h", 10, T0, hours=4))
    for e in hydra("g", 10, T0, hours=4):
        i = int(str(e["event_id"]).rsplit("-", 1)[1])
        e["ip"] = str(e["ip"]).replace("198.51.100.", "203.0.113.")
        e["prompt"] = f"Task {i}: write a proof that {i % 7} divides n^7 - n, every step shown."
        events.append(e)
    pipeline = Pipeline()
    run(pipeline, events)
    campaign_of = pipeline.stage.linker.campaign_of
    first = {campaign_of.get(f"h-{k}") for k in range(10)}
    second = {campaign_of.get(f"g-{k}") for k in range(10)}
    assert len(first) == len(second) == 1 and None not in first | second
    assert first != second


def test_a_class_on_an_operations_phrasing_is_not_merged_into_the_operation() -> None:
    """A class on one card pastes exercises phrased as a running hydra's are (a popular
    prompt pattern), getting chat-length answers: the template is no tie between the class
    and the operation, and nobody in the class is named at high."""
    events = list(hydra("h", 12, T0, hours=8))
    lesson = sorted(class_session("cls", 20, T0 + 3 * 3600.0), key=lambda e: float(e["ts"]))
    for e in lesson:
        i = int(str(e["event_id"]).rsplit("-", 1)[1])
        e["prompt"] = f"Q{i}: integrate x^{i % 9} e^x dx. Explain your reasoning step by step."
    for student in ("cls-3", "cls-7", "cls-11", "cls-15"):  # a long first answer each
        next(e for e in lesson if e["account_id"] == student)["output_tokens"] = 900
    events += lesson
    pipeline = Pipeline()
    alerts = run(pipeline, events)
    campaign_of = pipeline.stage.linker.campaign_of
    operation = {campaign_of.get(f"h-{k}") for k in range(12)}
    assert len(operation) == 1 and None not in operation
    assert not {campaign_of.get(f"cls-{k}") for k in range(20)} & operation
    named = {
        a for alert in alerts if alert.severity in ("high", "critical") for a in alert.accounts
    }
    assert named >= {f"h-{k}" for k in range(12)}
    assert not {a for a in named if a.startswith("cls-")}


def test_a_campaign_pages_once_its_harvest_is_of_consequence() -> None:
    """Twelve accounts taking 3,000-token answers six times an hour each are named at high in
    their first minutes, and page (critical) once they have taken a million output tokens in
    all (216,000 an hour: after 4.6 h); set to 0, the page goes out on the score alone."""

    def first(config: DetectorConfig, severity: str) -> float:
        alerts = run(Pipeline(config), list(hydra("h", 12, T0, hours=8)))
        return min(a.event_ts for a in alerts if a.kind == "cluster" and a.severity == severity)

    config = DetectorConfig()
    assert first(config, "high") - T0 < 600
    assert first(config, "critical") - T0 >= config.page_output_tokens / (12 * 6 * 3000) * 3600
    assert first(DetectorConfig(page_output_tokens=0), "critical") - T0 < 600


def _lesson(budget: int, long_answer: int, long_share: float = 1 / 3) -> list[dict[str, object]]:
    """Forty accounts made minutes ago on a school's card and network, six to ten calls each
    in one hour on the teacher's exercises (most saying "show your steps"), answers mostly
    chat-length and `long_share` of them `long_answer` tokens, each call capped at `budget`."""
    rng = random.Random(4)
    exercises = (
        "What is {a}/{b} + {c}/{d}? show your steps please",
        "a bike costs ${a}{b} and is {c}0% off. final price?? explain each step",
        "why is {a} x {b} the same as {b} x {a}, explain like a teacher would",
        "help me write 3 sentences about my weekend trip to the lake with {a} friends",
    )
    events = []
    for k in range(40):
        for j in range(rng.randint(6, 10)):
            a, b, c, d = (rng.randint(2, 9) for _ in range(4))
            events.append(
                event(
                    j,
                    f"s-{k}",
                    T0 + rng.uniform(60.0, 3600.0),
                    account_created_ts=T0 - rng.uniform(300.0, 1200.0),
                    payment_fingerprint="school-card",
                    ip=f"192.0.2.{k % 3 + 1}",
                    user_agent="Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) Chrome/126.0",
                    output_tokens=long_answer
                    if rng.random() < long_share
                    else rng.randint(450, 900),
                    max_tokens=budget,
                    prompt=rng.choice(exercises).format(a=a, b=b, c=c, d=d),
                )
            )
    return events


def test_a_class_on_a_small_answer_budget_is_not_named_at_high() -> None:
    """A class on a tutoring app that caps answers at 2,048 tokens, getting mostly
    chat-length ones, is no harvest, though it is as fresh, as shared and as reasoning-heavy
    as a small hydra: nobody is named at high. The same lesson with room for reasoning
    traces is, and so is one whose answers all fill the small budget (a harvest on one)."""

    def named(events: list[dict[str, object]]) -> set[str]:
        alerts = run(Pipeline(), events)
        return {
            a for alert in alerts if alert.severity in ("high", "critical") for a in alert.accounts
        }

    assert not named(_lesson(2048, 1300))
    assert len(named(_lesson(16000, 1300))) >= 30
    assert len(named(_lesson(2048, 1900, long_share=1.0))) >= 30


def test_an_evaluation_run_on_a_campaigns_benchmark_questions_is_not_drawn_in() -> None:
    """An aged account runs the hydra's benchmark questions at temperature 0, as evaluation
    suites call, getting the same long reasoning answers: the template is no tie to the
    campaign. The same calls sampled at temperature 0.7 are a harvest on its template."""

    def linked(temperature: float) -> bool:
        events = list(hydra("h", 12, T0, hours=4))
        for i in range(120):
            events.append(
                event(
                    i,
                    "evals",
                    T0 + 1800.0 + i * 60.0,
                    account_created_ts=T0 - 300 * DAY,
                    payment_fingerprint="lab-card",
                    ip="203.0.113.40",
                    user_agent="lm-eval-harness/0.4.8",
                    output_tokens=3000,
                    max_tokens=4096,
                    temperature=temperature,
                    prompt=hydra_call(i, "h-0", T0, T0, "", 0)["prompt"],
                )
            )
        pipeline = Pipeline()
        run(pipeline, events)
        return "evals" in pipeline.stage.linker.campaign_of

    assert not linked(0.0)
    assert linked(0.7)


def test_a_resellers_second_card_on_a_campaigns_servers_is_that_campaign() -> None:
    """A reseller's second card, its sixteen accounts mostly passing their customers' chat
    through between huge answers: from the hydra's datacenter prefix they are the hydra's
    campaign; from networks of their own, a campaign apart. (On this traffic the template
    and network rules merge them already; the merge of a card-only campaign whose holders
    call from another campaign's servers is what joined half of a blind generator's
    reseller, whose prefix groups are mostly chat and never candidates.)"""

    def campaigns(host: Callable[[int], str]) -> tuple[set[str | None], str]:
        pipeline, late = _after_hydra()
        events = _card_sharers("r", 16, harvest_tokens=24000)
        for e in events:
            k = int(str(e["account_id"]).rsplit("-", 1)[1])
            e["ts"] = float(str(e["ts"])) + late - T0
            e["ip"] = host(k)
        run(pipeline, events)
        linker = pipeline.stage.linker
        return {linker.campaign_of.get(f"r-{k}") for k in range(16)}, linker.campaign_of["h-0"]

    on_servers, hydra_campaign = campaigns(lambda k: f"198.51.100.{30 + k % 4}")
    assert on_servers == {hydra_campaign}
    apart, hydra_campaign = campaigns(lambda k: f"192.0.2.{k % 4 + 1}")
    assert len(apart) == 1 and None not in apart and hydra_campaign not in apart
