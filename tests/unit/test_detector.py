"""The detection core end to end on hand-built streams: alerts, dedupe, lateness, labels."""

from __future__ import annotations

from itertools import pairwise

import orjson

from stream_detector import features as ff
from stream_detector import state as sm
from stream_detector.config import DetectorConfig
from stream_detector.detector import Detector
from stream_detector.labels import Label
from stream_detector.scoring import assess

from .builders import DAY, T0, event, harvester, person, resumed, run


def test_reasoning_harvester_reaches_critical_with_readable_reasons() -> None:
    alerts = run(Detector(), list(harvester("h1", T0, hours=8, per_hour=240)))
    severities = [a.severity for a in alerts]
    assert "critical" in severities
    critical = next(a for a in alerts if a.severity == "critical")
    signals = [r["signal"] for r in critical.reasons]
    assert "reasoning_elicitation" in signals and "template_repetition" in signals
    assert (
        critical.accounts == ["h1"] and critical.accounts_total == 1 and critical.kind == "account"
    )
    assert 0.0 <= critical.score <= 1.0 and critical.first_seen_ts == T0
    assert all(isinstance(r["detail"], str) and r["detail"] for r in critical.reasons)
    # escalation is monotone, and every alert is a rise or a repeat after the cool-down
    levels = ["low", "medium", "high", "critical"]
    ranks = [levels.index(s) for s in severities]
    assert ranks == sorted(ranks)


def test_ordinary_people_are_not_alerted() -> None:
    events = [e for k in range(20) for e in person(f"p{k}", T0, days=3)]
    assert run(Detector(), events) == []


def test_alerts_do_not_carry_prompt_or_ip() -> None:
    events = [dict(e, ip="203.0.113.77") for e in harvester("h1", T0, hours=3, per_hour=240)]
    blob = b"".join(a.to_json() for a in run(Detector(), events))
    assert blob and b"203.0.113.77" not in blob and b"tank holds" not in blob


def test_duplicates_count_once_and_do_not_change_decisions() -> None:
    events = list(harvester("h1", T0, hours=3, per_hour=240))
    once = Detector()
    twice = Detector()
    ids_once = [a.alert_id for a in run(once, events)]
    ids_twice = [a.alert_id for a in run(twice, events + events[::3])]
    assert twice.stats.duplicates == len(events[::3])
    assert twice.stats.events == once.stats.events == len(events)
    assert ids_twice == ids_once


def test_late_events_are_counted_and_left_out() -> None:
    config = DetectorConfig(allowed_lateness_s=60)
    detector = Detector(config)
    run(detector, [event(1, "a", T0 + 1000)])
    run(detector, [event(2, "a", T0 + 970)])  # within lateness: applied
    run(detector, [event(3, "a", T0 + 100)])  # 900 s late: counted, not applied
    assert detector.stats.late == 1 and detector.stats.events == 2


def test_alert_ids_are_deterministic_across_runs() -> None:
    events = list(harvester("h1", T0, hours=4, per_hour=200))
    first = [a.alert_id for a in run(Detector(), events)]
    second = [a.alert_id for a in run(Detector(), events)]
    assert first and first == second and len(set(first)) == len(first)


def test_cooldown_suppresses_repeats_then_realerts() -> None:
    config = DetectorConfig(cooldown_s=6 * 3600)
    alerts = run(Detector(config), list(harvester("h1", T0, hours=20, per_hour=120)))
    critical = [a for a in alerts if a.severity == "critical"]
    assert 2 <= len(critical) <= 4  # ~20 h / 6 h cool-down, never per event
    gaps = [b.event_ts - a.event_ts for a, b in pairwise(critical)]
    assert all(gap >= 6 * 3600 for gap in gaps)


def test_benign_label_suppresses_until_behaviour_changes() -> None:
    detector = Detector()
    events = list(harvester("h1", T0, hours=2, per_hour=120))
    assert run(detector, events)
    detector.apply_label(Label("h1", attack=False, ts=events[-1]["ts"]))
    later = [
        dict(e, event_id=f"later-{i}", ts=e["ts"] + 7 * 3600)
        for i, e in enumerate(harvester("h1", T0, hours=1, per_hour=60))
    ]
    assert run(detector, later) == []  # same behaviour, a day later: still suppressed
    surge = [
        dict(e, event_id=f"surge-{i}", ts=e["ts"] + 9 * 3600)
        for i, e in enumerate(harvester("h1", T0, hours=2, per_hour=1200))
    ]
    assert run(detector, surge)  # ten times the volume: alerted again


def test_state_export_import_gives_identical_decisions() -> None:
    events = list(harvester("h1", T0, hours=6, per_hour=200))
    head, tail = events[:500], events[500:]
    whole = Detector()
    expected = [a.alert_id for a in run(whole, events)]
    first = Detector()
    got = [a.alert_id for a in run(first, head)]
    got += [a.alert_id for a in run(resumed(first), tail)]
    assert got == expected


def test_calls_on_a_small_answer_budget_are_counted_and_older_states_still_restore() -> None:
    """A stated max_tokens of at most 2,048 counts as a small budget (none stated: no
    budget); a state exported before that count existed restores with none counted and
    every other count in its place."""
    detector = Detector()
    budgets = (None, 1, 2048, 2049, 64000)
    run(detector, [event(i, "a", T0 + i, max_tokens=b) for i, b in enumerate(budgets)])
    state = detector._store.get("a")
    assert state is not None
    small = ff.SMALL_BUDGET.bit_length() - 1
    assert state.counts[small] == 2
    doc = orjson.loads(state.export())
    assert doc[0] == sm.STATE_VERSION == 5
    counts = doc[8]
    old = [4, *doc[1:8], counts[:small] + counts[small + 1 :], *doc[9:]]
    restored = sm.AccountState.restore(orjson.dumps(old))
    assert restored.counts[small] == 0
    assert [*restored.counts[:small], *restored.counts[small + 1 :]] == old[8]
    assert restored.export() != state.export()


def test_idle_accounts_expire_and_memory_is_bounded() -> None:
    detector = Detector(DetectorConfig(idle_expiry_s=3600, max_accounts=1000))
    events = [event(i, f"acct-{i}", T0 + i) for i in range(5000)]
    events += [event(i, f"late-{i}", T0 + DAY + i) for i in range(5000)]
    run(detector, events)
    assert detector.accounts_tracked <= 1000 + 4096
    assert detector.stats.expired >= 5000


def test_config_from_env_validates() -> None:
    config = DetectorConfig.from_env({"STREAM_DETECTOR_COOLDOWN_S": "60"})
    assert config.cooldown_s == 60
    for bad in ({"STREAM_DETECTOR_COOLDOWN_S": "soon"}, {"STREAM_DETECTOR_THRESHOLD_HIGH": "0.1"}):
        try:
            DetectorConfig.from_env(bad)
        except ValueError as exc:
            assert "STREAM_DETECTOR" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")


def test_model_checkpoint_resumes_the_learning_schedule() -> None:
    events = list(harvester("h1", T0, hours=3, per_hour=240))
    first = Detector()
    run(first, events[:300])
    second = resumed(first)
    assert second.model._calls == first.model._calls > 0
    tail = events[300:]
    assert [(a.alert_id, a.score) for a in run(second, tail)] == [
        (a.alert_id, a.score) for a in run(first, tail)
    ]


def _withheld_terms(**fields: object) -> dict[str, float]:
    """The scorecard of an aged account calling every 6 minutes for a day, no prompt text."""
    detector = Detector()
    start = T0 + 200 * DAY
    calls = [event(i, "w", start + i * 360.0, account_created_ts=T0, **fields) for i in range(240)]
    run(detector, calls)
    state = detector._store.get("w")
    assert state is not None
    return {t[0]: t[2] for t in assess(state, state.last_ts).terms}


def test_withheld_prompts_with_reasoning_and_long_answers_stand_in_for_prompt_terms() -> None:
    harvesting = _withheld_terms(thinking=True, output_tokens=3500, max_tokens=32000)
    assert harvesting["withheld_prompt_harvest"] > 0
    # chat-length answers, or no reasoning asked for: nothing stands in
    assert "withheld_prompt_harvest" not in _withheld_terms(thinking=True, output_tokens=600)
    assert "withheld_prompt_harvest" not in _withheld_terms(output_tokens=3500, max_tokens=32000)
    # with prompt text the prompt-based terms speak for themselves
    with_text = _withheld_terms(
        thinking=True, output_tokens=3500, max_tokens=32000, prompt="summarise this paper"
    )
    assert "withheld_prompt_harvest" not in with_text


def test_an_accounts_answers_of_many_thousand_tokens_weigh_more_than_long_ones() -> None:
    """Past 2,000 tokens a call (written-out reasoning harvested at length) the answers weigh
    up to 1.8, as a group's do; up to there the long-answer scale holds (1.2 from 1,600)."""

    def weight(tokens: int) -> float:
        detector = Detector()
        events = [{**e, "output_tokens": tokens} for e in harvester("h", T0, 1, 8)]
        run(detector, events)
        state = detector._store.get("h")
        assert state is not None
        terms = assess(state, T0 + 3600.0).terms
        return next(w for name, _, w in terms if name == "output_tokens")

    assert abs(weight(800) - 0.6) < 1e-9 and weight(1600) == 1.2 == weight(2000)
    assert abs(weight(2828) - 1.5) < 1e-3
    assert abs(weight(4000) - 1.8) < 1e-9 and weight(12000) == 1.8


def test_an_agent_sending_its_context_on_every_call_is_not_a_harvester() -> None:
    """An agentic coding session thinks on every call with tools and long answers, as an
    agentic harvest does; what it sends is its working context, many times the answer."""

    def top(input_tokens: int) -> tuple[str | None, dict[str, float]]:
        events = [
            {
                **e,
                "input_tokens": input_tokens,
                "thinking": True,
                "tools": 12,
                "tool_calls": 2,
                "output_tokens": 1500,
                "account_created_ts": T0 - 200 * DAY,
            }
            for e in harvester("agent", T0, hours=8, per_hour=60)
        ]
        detector = Detector()
        alerts = run(detector, events)
        state = detector._store.get("agent")
        assert state is not None
        weights = {name: w for name, _, w in assess(state, events[-1]["ts"]).terms}
        levels = ["low", "medium", "high", "critical"]
        worst = max((a.severity for a in alerts), key=levels.index, default=None)
        return worst, weights

    harvest, harvest_terms = top(input_tokens=150)
    agent, agent_terms = top(input_tokens=40_000)
    assert harvest in ("high", "critical") and "context_heavy" not in harvest_terms
    assert agent in (None, "low", "medium") and agent_terms["context_heavy"] == -2.5
    # a conversation's history weighs less: three input tokens per output token
    _, chat_terms = top(input_tokens=4500)
    assert -1.0 < chat_terms["context_heavy"] < 0.0
