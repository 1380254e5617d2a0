"""Explainable scoring of one account: a scorecard of behaviours in log-odds.

Each signal of the public record of distillation campaigns adds (or, for the signs of
legitimate use, subtracts) a bounded number of log-odds; the sum goes through a logistic to a
score in [0, 1]. The contributions are the alert's `reasons`, largest first, so an analyst sees
why. The online River models (`stream_detector.model`) add their own bounded terms on top.

The weights encode judgement, not a fit to one simulator: no single signal can reach `high`
on its own; volume must meet harvesting content (reasoning elicitation, concentrated
capabilities, templated prompts, long answers) and automation (24/7, regular timing, fresh
account, rate-limit pressure) before the score climbs.

Scoring runs often, alerting rarely: terms are plain `(signal, value, weight)` tuples and the
analyst's wording is rendered by `explain` only for alerts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream_detector import features as ff
from stream_detector import prompts as pp
from stream_detector.state import HOUR, REPEATS, AccountState

#: Log-odds of an account before any evidence: campaigns are rare.
PRIOR = -7.0
#: Without prompt text, mean output tokens of reasoning calls that stand in for what the
#: prompt-based terms would have said, and their weight.
WITHHELD_LONG_ANSWER = 2000.0
WITHHELD_WEIGHT = 1.5
#: Input tokens per output token above which an account is reading more than harvesting.
CONTEXT_HEAVY = 2.0
#: Output tokens that count as one call of volume (a typical chat answer).
OUTPUT_PER_CALL = 400.0
#: Mean output tokens per call beyond which answers weigh more than long ones
#: (`with_huge_answers`).
HUGE_ANSWER = 2000.0
DAY = 86400.0

#: One piece of evidence: (signal, value, log-odds weight).
Term = tuple[str, float, float]

#: How each signal reads in an alert (`value` is the term's value).
DETAILS: dict[str, str] = {
    "volume": "{value:.0f} calls per hour over the last 24 h (long answers counted by output)",
    "round_the_clock": "active in {value:.0%} of the hours since it started",
    "all_hours_of_day": "active at {value:.0%} of the hours of the day",
    "output_tokens": "{value:.0f} output tokens per call",
    "context_heavy": "{value:.1f} input tokens sent per output token (context, not harvest)",
    "max_tokens_ceiling": "{value:.0%} of answers ran into max_tokens",
    "reasoning_elicitation": "{value:.0%} of calls ask for written-out reasoning or thinking",
    "agentic_concentration": "{value:.0%} of calls are agentic tool use",
    "coding_concentration": "{value:.0%} of prompts are coding tasks",
    "reasoning_concentration": "{value:.0%} of prompts are formal reasoning (math, logic, proofs)",
    "rewriting_concentration": "{value:.0%} of prompts ask to rewrite or rephrase text",
    "grading_concentration": "{value:.0%} of prompts use the model as a grader",
    "template_repetition": "{value:.0%} of prompts repeat a recent prompt's template skeleton",
    "withheld_prompt_harvest": "prompt text withheld; reasoning on most calls, {value:.0f} "
    "output tokens per call",
    "account_age": "account created {value:.1f} days before",
    "verified_org": "belongs to a verified organization",
    "regular_timing": "inter-arrival spread of {value:.2f} decades (machine-regular)",
    "rate_limited": "{value:.0%} of calls were rate limited",
    "new_model_pivot": "{value:.0%} of calls on a newly released model",
    "temperature_zero": "{value:.0%} of calls at temperature 0 (evaluation-like)",
    "anomaly": "unlike the recent population of accounts (score {value:.2f})",
    "analyst_feedback": "resembles accounts analysts labelled as attacks (p={value:.2f})",
    "campaign_member": "member of a linked campaign of {value:.0f} accounts (see cluster alert)",
    "shared_key_kinds": "accounts linked through {value:.0f} kinds of shared keys",
    "group_size": "{value:.0f} accounts share the key",
    "shared_pay": "{value:.0f} accounts per shared payment fingerprint",
    "shared_net": "{value:.0f} accounts per shared network prefix",
    "shared_cli": "{value:.0f} accounts per shared client fingerprint",
    "shared_sys": "{value:.0f} accounts per shared system prompt",
    "shared_tpl": "{value:.0f} accounts per shared prompt template",
    "shared_age": "{value:.0f} accounts made in one half hour, used from one network",
    "group_volume": "{value:.0f} calls per hour across the group",
    "group_reasoning_elicitation": "{value:.0%} of the group's calls ask for written-out reasoning",
    "group_output_tokens": "{value:.0f} output tokens per call across the group",
    "group_small_budget": "{value:.0%} of the group's calls allow chat-length answers at most",
    "group_capability_concentration": "{value:.0%} of the group's calls exercise one capability",
    "group_fresh_accounts": "{value:.0%} of the accounts are less than 14 days old",
    "group_verified_org": "{value:.0%} of the accounts belong to a verified organization",
    "group_round_the_clock": "the group is active at {value:.0%} of the hours of the day",
    "load_balanced": "calls spread evenly over accounts (spread {value:.2f})",
    "group_lockstep": "accounts call in the same minutes ({value:.2f} beyond chance)",
    "group_rate_limited": "{value:.0%} of the group's calls were rate limited",
    "group_template_repetition": "{value:.0%} of the group's prompts repeat a recent template",
    "group_harvest_share": "only {value:.0%} of the accounts sharing the key harvest",
}

#: Order of the vector the online models see (all values roughly in [0, 1]).
VECTOR_FIELDS = (
    "rate",
    "active",
    "coverage",
    "out",
    "ceiling",
    "elicit",
    "concentration",
    "template",
    "fresh",
    "org",
    "regular",
    "rate_limited",
    "new_model",
    "multi_turn",
    "short_output",
    "temperature_zero",
)

# Indices of event flags in `AccountState.counts`.
_I = {name: flag.bit_length() - 1 for name, flag in vars(ff).items() if name.isupper()
      and isinstance(flag, int) and not name.endswith(("N_FLAGS", "_TOKENS"))}  # fmt: skip
_ELICIT, _CODING, _FORMAL = 0, pp.CODING.bit_length() - 1, pp.FORMAL_REASONING.bit_length() - 1
_REWRITING, _GRADING = pp.REWRITING.bit_length() - 1, pp.GRADING.bit_length() - 1


@dataclass(frozen=True, slots=True)
class Assessment:
    """A scored account: the rule log-odds, its terms and the model features (in
    `VECTOR_FIELDS` order; the dict River wants is built only when a model asks)."""

    logit: float
    terms: list[Term]
    values: tuple[float, ...]

    @property
    def vector(self) -> dict[str, float]:
        return dict(zip(VECTOR_FIELDS, self.values, strict=True))


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def with_huge_answers(weight: float, out_mean: float) -> float:
    """An answer-length `weight` (an account's or a group's, at most a long answer's 1.2),
    raised past HUGE_ANSWER mean output tokens: many thousand tokens a call (a harvest of
    written-out reasoning, a reseller's harvests between its customers' chat) are more than
    long, up to half as much again at twice HUGE_ANSWER."""
    if out_mean <= HUGE_ANSWER:
        return weight
    return min(1.2 + 0.6 * math.log2(out_mean / HUGE_ANSWER), 1.8)


def assess(state: AccountState, now: float) -> Assessment:
    """Score `state` at event time `now` with the behavioural scorecard."""
    n = state.n or 1
    c = state.counts
    prompts = c[_I["HAS_PROMPT"]] or 1
    span_h = max((state.last_ts - state.first_ts) / HOUR, 0.0)
    terms: list[Term] = []
    add = terms.append

    # Volume: sustained hourly rate over the day window (a short burst is spread over >= 1 h),
    # in calls or in output tokens (OUTPUT_PER_CALL to a call), whichever says more: what a
    # harvest takes is answers, and a few calls with very long ones take as much as many.
    rate = state.hourly_rate(now)
    out_mean = state.out_tokens / n
    volume = max(rate, rate * out_mean / OUTPUT_PER_CALL)
    add(("volume", volume, _clamp(1.1 * math.log2(max(volume, 0.1) / 40.0), -2.0, 4.0)))

    # 24/7 operation: active in nearly every hour since it started, and at all hours of day.
    active = state.active_hours_24h() / min(24.0, math.floor(span_h) + 1.0)
    coverage = state.hod_mask.bit_count() / 24.0
    if span_h >= 6.0:
        add(("round_the_clock", active, _clamp(3.0 * (active - 0.6), -1.2, 1.2)))
    if span_h >= 30.0 and coverage >= 0.85:
        add(("all_hours_of_day", coverage, 1.0))

    # What is harvested: long answers up to the ceiling, reasoning written out.
    if out_mean < 80:
        add(("output_tokens", out_mean, -2.5))
    else:
        weight = _clamp(0.6 * math.log2(out_mean / 400.0), -1.0, 1.2)
        add(("output_tokens", out_mean, with_huge_answers(weight, out_mean)))
    # What is sent for it: a harvest sends a short prompt for a long answer; an agent working
    # over a codebase, or a long conversation, sends its context again on every call (input
    # tokens paid for, many times the answer: 22-85x at the median in three independent
    # generators' agentic coding, under 0.4x in all their harvests but the resellers' chat).
    if state.in_tokens and state.out_tokens:
        reading = state.in_tokens / state.out_tokens
        if reading > CONTEXT_HEAVY:
            add(
                (
                    "context_heavy",
                    reading,
                    -_clamp(0.8 * math.log2(reading / CONTEXT_HEAVY), 0.0, 2.5),
                )
            )
    ceiling = c[_I["CEILING_HIT"]] / n
    add(("max_tokens_ceiling", ceiling, ceiling))
    elicit = max(c[_ELICIT], c[_I["THINKING"]]) / n
    add(("reasoning_elicitation", elicit, 2.5 * elicit))
    concentration, top = max(
        (c[_I["AGENTIC"]] / n, "agentic_concentration"),
        (c[_CODING] / prompts, "coding_concentration"),
        (c[_FORMAL] / prompts, "reasoning_concentration"),
        (c[_REWRITING] / prompts, "rewriting_concentration"),
        (c[_GRADING] / prompts, "grading_concentration"),
    )
    add((top, concentration, _clamp(3.0 * (concentration - 0.5), 0.0, 1.5)))
    template = 0.0
    if prompts >= 8:
        template = c[REPEATS] / prompts
        add(("template_repetition", template, _clamp(2.0 * (template - 0.3), 0.0, 1.4)))
    elif c[_I["HAS_PROMPT"]] * 10 < n and elicit >= 0.5 and out_mean >= WITHHELD_LONG_ANSWER:
        # No prompt text (a no-logging policy): what the terms above read from it is unknown,
        # not absent. Reasoning on most calls with long answers stands in for it.
        add(("withheld_prompt_harvest", out_mean, WITHHELD_WEIGHT))

    # Who is calling: fresh accounts are the campaigns' raw material; verified orgs are not.
    fresh = 0.0
    if state.created_ts is not None:
        age_d = max(now - state.created_ts, 0.0) / DAY
        fresh = 1.0 / (1.0 + age_d / 7.0)
        add(
            (
                "account_age",
                age_d,
                1.5 if age_d < 2 else 0.8 if age_d < 14 else 0.0 if age_d < 90 else -1.2,
            )
        )
    if state.has_org:
        add(("verified_org", 1.0, -3.0))

    # Automation: metronome timing and pushing against the rate limit.
    regular = 0.0
    if state.gap_n >= 20:
        std = state.gap_std()
        regular = _clamp(1.0 - std / 0.8, 0.0, 1.0)
        add(("regular_timing", std, 0.8 * regular))
    limited = c[_I["RATE_LIMITED"]] / n
    if limited:
        add(("rate_limited", limited, min(4.0 * limited, 1.0)))
    new_model = c[_I["NEW_MODEL"]] / n
    if new_model >= 0.2:
        add(("new_model_pivot", new_model, 0.8))
    # Deterministic sampling is how evaluations and pipelines call: a harvest wants the
    # model's natural answers (temperature 0 in 0-11 % of campaign calls in four independent
    # generators' traffic, 56-100 % of evaluation harnesses' and batch jobs').
    zero = c[_I["TEMPERATURE_ZERO"]] / n
    if zero >= 0.2:
        add(("temperature_zero", zero, -2.5 * zero))

    logit = PRIOR
    for term in terms:
        logit += term[2]
    values = (
        _clamp(math.log10(max(rate, 1.0)) / 4.0, 0.0, 1.0),
        active if span_h >= 6.0 else 0.5,
        coverage,
        _clamp(math.log10(max(out_mean, 1.0)) / 4.0, 0.0, 1.0),
        ceiling,
        elicit,
        concentration,
        template,
        fresh,
        1.0 if state.has_org else 0.0,
        regular,
        limited,
        new_model,
        c[_I["MULTI_TURN"]] / n,
        1.0 if out_mean < 80 else 0.0,
        c[_I["TEMPERATURE_ZERO"]] / n,
    )
    return Assessment(logit, terms, values)


def explain(terms: list[Term], limit: int = 8) -> list[dict[str, object]]:
    """Contract §2 `reasons`: the evidence for the score, strongest first, in words."""
    positive = sorted((t for t in terms if t[2] > 0), key=lambda t: -t[2])[:limit]
    return [
        {"signal": signal, "value": round(value, 4), "detail": DETAILS[signal].format(value=value)}
        for signal, value, _ in positive
    ]


def logit(p: float) -> float:
    """Inverse of `sigmoid`, for thresholds given as scores."""
    return math.log(p / (1.0 - p)) if p < 1.0 else 50.0


def sigmoid(z: float) -> float:
    """Logistic function, safe for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
