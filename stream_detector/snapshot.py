"""What the campaign stage knows of an account, and what it reads in it.

The account side freezes the few fields the linker needs into an `AccountSnapshot` when it
links or re-scores an account (and when a label changes its alert policy); the campaign stage
reads nothing else, so its decisions depend only on the sequence of snapshots it received.
The predicates below are how linking judges one account from its snapshot: whether its own
traffic looks like harvesting (`harvest_like`), is committed to it (`committed`), or is
unvouched enough for a shared card to draw it in (`unvouched`). No personal data: counts,
times, bit masks and the account's alert-policy memory.
"""

from __future__ import annotations

import math
import struct
from array import array
from typing import Any

from stream_detector import features as ff
from stream_detector import prompts as pp
from stream_detector.alerts import new_memory
from stream_detector.scoring import DAY, HOUR
from stream_detector.state import REPEATS, RING, AccountState

#: Accounts older than this are drawn into campaigns by their own harvest-like traffic only if
#: their answers average LONG_ANSWER output tokens.
YOUNG_S = 30 * DAY
#: Mean output tokens per call below which an account's traffic is not harvest-like at all.
HARVEST_MIN_ANSWER = 250
LONG_ANSWER = 1000
#: Answers that filled a `max_tokens` this small (mean output tokens below it) were cut short
#: by the caller's budget, not long by what was asked (see `long_answers`).
SMALL_BUDGET = 1300
#: Mean output tokens per call above chat length: of an account a shared card alone draws into
#: a campaign, and of one committed to harvesting (`committed`).
SUBSTANTIAL_ANSWER = 800
#: ... and of one that asks for reasoning in every call, single calls only (`committed`).
COERCED_ANSWER = 600
#: Mean output tokens per call of an unvouched card holder that counts in its card's group.
CARD_LONG_ANSWER = 2000

#: Indices of the per-flag call counts in `AccountState.counts` (a flag's bit position).
I_ELICIT = 0
I_THINKING = ff.THINKING.bit_length() - 1
I_AGENTIC = ff.AGENTIC.bit_length() - 1
I_PROMPT = ff.HAS_PROMPT.bit_length() - 1
I_RATE_LIMITED = ff.RATE_LIMITED.bit_length() - 1
I_MULTI_TURN = ff.MULTI_TURN.bit_length() - 1
I_CEILING = ff.CEILING_HIT.bit_length() - 1
I_LONG = ff.LONG_OUTPUT.bit_length() - 1
I_SMALL_BUDGET = ff.SMALL_BUDGET.bit_length() - 1
I_TEMPERATURE_ZERO = ff.TEMPERATURE_ZERO.bit_length() - 1
_C0, _C1, _C2, _C3 = (
    pp.CODING.bit_length() - 1,
    pp.FORMAL_REASONING.bit_length() - 1,
    pp.REWRITING.bit_length() - 1,
    pp.GRADING.bit_length() - 1,
)


#: Index of `has_org` in `AccountSnapshot.sums`.
SUMS_HAS_ORG = 10


class AccountSnapshot:
    """What the campaign stage knows of an account: the few fields the linker reads, frozen
    when the account side last linked or re-scored it (or applied a label to it).

    No personal data (counts, times, a bit mask and the account's alert-policy memory), and
    nothing the stage could not rebuild from the evidence stream: its decisions depend only on
    the sequence of snapshots it received, never on live account state.
    """

    __slots__ = (
        "_rate",
        "_rate_hour",
        "agentic",
        "caps",
        "ceiling",
        "created_key",
        "created_ts",
        "elicit",
        "first_ts",
        "harvest",
        "harvest_until",
        "has_org",
        "hod_mask",
        "last_ts",
        "long",
        "mask_minute",
        "minute_mask",
        "multi_turn",
        "n",
        "out_tokens",
        "policy",
        "prompts",
        "rate_limited",
        "repeats",
        "ring",
        "ring_hour",
        "small_budget",
        "sums",
        "temperature_zero",
    )

    _rate_hour: int
    _rate: float
    first_ts: float
    last_ts: float
    created_ts: float | None
    n: int
    out_tokens: int
    has_org: bool
    #: Calls asking for written-out reasoning (the larger of lexicon hits and `thinking`).
    elicit: int
    agentic: int
    prompts: int
    rate_limited: int
    #: Prompts whose template fingerprint recurred (see `state.REPEATS`).
    repeats: int
    #: Minutes with calls up to `mask_minute` (see `stream_detector.timing`).
    minute_mask: int
    mask_minute: int
    #: Calls continuing a conversation (more than one message in the request).
    multi_turn: int
    #: Calls whose answer filled the requested `max_tokens` (90 % of it or more).
    ceiling: int
    #: Calls answered at length (`features.LONG_OUTPUT_TOKENS` or more).
    long: int
    #: Calls whose max_tokens left room for a chat-length answer at most (`ff.SMALL_BUDGET`).
    small_budget: int
    #: Calls at temperature 0 (how evaluation suites call).
    temperature_zero: int
    #: Prompts per capability (coding, formal reasoning, rewriting, grading).
    caps: tuple[int, int, int, int]
    hod_mask: int
    ring_hour: int
    #: Hourly counts of the day window, slot = absolute hour % 24 (as in `AccountState`).
    ring: array[int]
    #: The account side's alert-policy memory (benign-label suppression travels with it).
    policy: list[Any]
    #: Harvest-like by its own traffic, the account's age aside (see `harvest_like`).
    harvest: bool
    #: Event time until which it counts as harvest-like (its age included; -inf: never).
    harvest_until: float
    #: `created_ts`, -inf when unknown (compares without a None test).
    created_key: float
    #: (n, elicit, agentic, rate_limited, four capabilities, prompts, out_tokens, has_org,
    #: repeats, long, small_budget): what a group's evaluation adds up over its members
    #: (`SUMS_HAS_ORG` the one that counts members, not calls).
    sums: tuple[int, ...]

    @classmethod
    def of(cls, state: AccountState) -> AccountSnapshot:
        snap = cls.__new__(cls)
        snap._rate_hour = -1
        snap._rate = 0.0
        c = state.counts
        n = snap.n = state.n
        snap.first_ts = state.first_ts
        snap.last_ts = state.last_ts
        snap.created_ts = state.created_ts
        out = snap.out_tokens = state.out_tokens
        org = snap.has_org = state.has_org
        elicit = snap.elicit = max(c[I_ELICIT], c[I_THINKING])
        agentic = snap.agentic = c[I_AGENTIC]
        prompts = snap.prompts = c[I_PROMPT]
        snap.rate_limited = c[I_RATE_LIMITED]
        snap.repeats = c[REPEATS]
        snap.multi_turn = c[I_MULTI_TURN]
        snap.ceiling = c[I_CEILING]
        snap.long = c[I_LONG]
        snap.small_budget = c[I_SMALL_BUDGET]
        snap.temperature_zero = c[I_TEMPERATURE_ZERO]
        caps = snap.caps = (c[_C0], c[_C1], c[_C2], c[_C3])
        snap.hod_mask = state.hod_mask
        snap.minute_mask = state.minute_mask
        snap.mask_minute = state.mask_minute
        snap.ring_hour = state.ring_hour
        snap.ring = array("I", c[RING:REPEATS])
        snap.policy = list(state.policy)
        snap.harvest = _harvests(n, out, org, elicit, agentic, prompts, max(caps))
        snap._derive()
        return snap

    def _derive(self) -> None:
        """The fields derived from the others (after `of` and `decode`)."""
        created = self.created_ts
        self.created_key = -math.inf if created is None else created
        self.sums = (
            self.n,
            self.elicit,
            self.agentic,
            self.rate_limited,
            *self.caps,
            self.prompts,
            self.out_tokens,
            int(self.has_org),
            self.repeats,
            self.long,
            self.small_budget,
        )
        # Old accounts count only with long answers, and more than one of them (a bought or
        # aged account harvesting reasoning; a long-time user asking code questions gets
        # chat-length ones, and one long rewrite says little of what an account does), or
        # with reasoning asked for in every call (`reasoned_at_length`).
        self.harvest_until = (
            -math.inf
            if not self.harvest
            else math.inf
            if created is None or (long_answers(self) and self.n > 1) or reasoned_at_length(self)
            else created + YOUNG_S
        )

    # --- windows (the same arithmetic as `AccountState`, on the frozen day window) ---------
    def events_24h(self, now: float) -> int:
        hour = self.ring_hour
        stale = int(now // HOUR) - hour
        if stale <= 0:
            return sum(self.ring)
        if stale >= 24:
            return 0
        return _ring_sum(self.ring, hour - 23 + stale, hour)

    def hourly_rate(self, now: float) -> float:
        """As `AccountState.hourly_rate`; a function of the hour of `now` (cached: a group
        evaluation asks for every member's rate, and members are evaluated again and again)."""
        hour = int(now // HOUR)
        if hour == self._rate_hour:
            return self._rate
        span_h = (self.last_ts - self.first_ts) / HOUR
        rate = self._rate = self.events_24h(now) / min(max(span_h, 1.0), 24.0)
        self._rate_hour = hour
        return rate

    def recent_rate(self, now: float) -> float:
        hour = int(now // HOUR)
        if hour - self.ring_hour >= 3:
            return 0.0
        return _ring_sum(self.ring, hour - 2, self.ring_hour) / 3.0

    # --- wire format ----------------------------------------------------------------------
    def encode(self) -> bytes:
        """Compact little-endian bytes (~241): the evidence topic and the stage checkpoint."""
        policy = self.policy or new_memory()
        created = self.created_ts
        return _SNAPSHOT.pack(
            self.first_ts,
            self.last_ts,
            _NO_TIME if created is None else created,
            self.n,
            self.out_tokens,
            self.has_org,
            self.elicit,
            self.agentic,
            self.prompts,
            self.rate_limited,
            self.repeats,
            self.multi_turn,
            self.ceiling,
            self.long,
            self.small_budget,
            self.temperature_zero,
            *self.caps,
            self.hod_mask,
            self.ring_hour,
            int(policy[0]),
            float(policy[1]),
            bool(policy[2]),
            float(policy[3]),
            float(policy[4]),
            bool(self.policy),
            self.harvest,
            self.minute_mask,
            self.mask_minute,
            *self.ring,
        )

    @classmethod
    def decode(cls, data: bytes | memoryview) -> AccountSnapshot:
        values = _SNAPSHOT.unpack(data)
        snap = cls.__new__(cls)
        snap._rate_hour = -1
        snap._rate = 0.0
        (
            snap.first_ts,
            snap.last_ts,
            created,
            snap.n,
            snap.out_tokens,
            snap.has_org,
            snap.elicit,
            snap.agentic,
            snap.prompts,
            snap.rate_limited,
            snap.repeats,
            snap.multi_turn,
            snap.ceiling,
            snap.long,
            snap.small_budget,
            snap.temperature_zero,
            c0,
            c1,
            c2,
            c3,
            snap.hod_mask,
            snap.ring_hour,
            level,
            last,
            suppressed,
            base_score,
            base_rate,
            has_policy,
            snap.harvest,
            snap.minute_mask,
            snap.mask_minute,
        ) = values[:31]
        snap.created_ts = None if created == _NO_TIME else created
        snap.caps = (c0, c1, c2, c3)
        snap.policy = [level, last, suppressed, base_score, base_rate] if has_policy else []
        snap.ring = array("I", values[31:])
        snap._derive()
        return snap


#: first/last/created ts, n, out tokens, org, elicit, agentic, prompts, rate-limited, repeats,
#: multi-turn calls, calls at the max_tokens ceiling, long answers, calls on a small budget,
#: calls at temperature 0, four capabilities, hour-of-day mask, ring hour, policy memory
#: (level, last ts, suppressed, base score, base rate, present), harvest, minute mask and
#: its minute, 24 hourly counts.
_SNAPSHOT = struct.Struct("<dddIQ?IIIIIIIIIIIIIIIiBd?dd??Qq24I")
SNAPSHOT_BYTES = _SNAPSHOT.size
_NO_TIME = -1.0e300


def _ring_sum(ring: array[int], lo: int, hi: int) -> int:
    """Sum of ring[h % 24] for absolute hours lo..hi (at most 24 of them)."""
    if hi < lo:
        return 0
    if hi - lo >= 24:
        return sum(ring[h % 24] for h in range(lo, hi + 1))  # as the state does (never here)
    a, b = lo % 24, hi % 24
    if a <= b:
        return sum(ring[a : b + 1])
    return sum(ring[a:]) + sum(ring[: b + 1])


def _harvests(
    n: int, out: int, org: bool, elicit: int, agentic: int, prompts: int, top_cap: int
) -> bool:
    """Whether counts of an account's traffic look like harvesting (see `harvest_like`).
    Without prompt text (a no-logging policy) what is asked for is unknown: long answers
    stand in for it."""
    return bool(
        n
        and not org
        and out >= HARVEST_MIN_ANSWER * n
        and (
            elicit * 10 >= 3 * n
            or agentic * 10 >= 7 * n
            or (prompts and top_cap * 10 >= 7 * prompts)
            or (not prompts and out >= LONG_ANSWER * n)
        )
    )


def looks_harvest(state: AccountState) -> bool:
    """`AccountSnapshot.of(state).harvest` without building the snapshot (the account side
    asks on every early event of every account: most fail the cheap tests first)."""
    n = state.n
    if state.has_org or state.out_tokens < HARVEST_MIN_ANSWER * n:
        return False
    c = state.flag_counts
    return _harvests(
        n,
        state.out_tokens,
        state.has_org,
        max(c[I_ELICIT], c[I_THINKING]),
        c[I_AGENTIC],
        c[I_PROMPT],
        max(c[_C0], c[_C1], c[_C2], c[_C3]),
    )


def _unaffiliated_substantial(n: int, has_org: bool, out_tokens: int) -> bool:
    """No verified organization and more than chat-length answers on average."""
    return bool(n) and not has_org and out_tokens >= SUBSTANTIAL_ANSWER * n


def may_join_by_card(state: AccountState) -> bool:
    """Whether an account could be drawn into a campaign by a card it shares with one (see
    `unvouched`), judged on the account state (the stage knows which cards are whose)."""
    return _unaffiliated_substantial(state.n, state.has_org, state.out_tokens)


def harvest_like(snap: AccountSnapshot, now: float) -> bool:
    """Whether an account's own traffic looks like harvesting (if weakly): reasoning asked
    for or one capability dominating, substantial answers, no verified organization, and a
    young or unknown account (at most `YOUNG_S` old) or long answers. Only such accounts are
    drawn into a campaign through a shared key."""
    return now <= snap.harvest_until


def card_counts(snap: AccountSnapshot, now: float) -> bool:
    """Whether an account counts in the evaluation of a card's group: harvest-like, or
    unvouched with very long answers on average (a reseller's accounts pass their customers'
    chat through between harvests of many thousand tokens each, and are not harvest-like by
    their share of reasoning calls)."""
    return harvest_like(snap, now) or (
        unvouched(snap, now) and snap.out_tokens >= CARD_LONG_ANSWER * snap.n
    )


def committed(snap: AccountSnapshot) -> bool:
    """Whether most of an account's traffic harvests: more than chat-length answers, and
    reasoning asked for in most calls, one capability in most, or long answers on average (a
    reseller's own chat in between); or reasoning asked for in every call, each a single
    call, with answers past `COERCED_ANSWER` (coerced reasoning traces need not be long).
    Without a shared card, only such an account is drawn into a campaign through the keys
    it shares (a newcomer who tried a popular template once or twice among other
    questions, or a student on the class's reasoning exercise, is not)."""
    n = snap.n
    out = snap.out_tokens
    if n and snap.elicit == n and not snap.multi_turn and out >= COERCED_ANSWER * n:
        return True
    return bool(
        n
        and out >= SUBSTANTIAL_ANSWER * n
        and (
            snap.elicit * 10 >= 6 * n
            or snap.agentic * 10 >= 7 * n
            or (snap.prompts and max(snap.caps) * 10 >= 7 * snap.prompts)
            or long_answers(snap)
        )
    )


def unvouched(snap: AccountSnapshot, now: float) -> bool:
    """An account with no verified organization and substantial answers (more than chat's),
    young or aged (a reseller's accounts are bought or aged): what a card shared with a
    campaign is enough to draw in, whatever it asks for (a class's accounts on its instructor's
    card get chat-length answers; an office's staff belong to its organization)."""
    return _unaffiliated_substantial(snap.n, snap.has_org, snap.out_tokens)


def long_answers(snap: AccountSnapshot) -> bool:
    """Whether an account's answers average `LONG_ANSWER` output tokens or more, and not
    because most filled a small budget: an app that caps answers at the SDKs' usual 1,024
    tokens gets them cut short (a class's exercise tool, a chat app); a harvest asks room for
    whole answers (no harvesting call in four generators' traffic filled a budget this small;
    a reseller's forwarded chat can)."""
    n = snap.n
    out = snap.out_tokens
    return out >= LONG_ANSWER * n and (snap.ceiling * 2 <= n or out >= SMALL_BUDGET * n)


def reasoned_at_length(snap: AccountSnapshot) -> bool:
    """Whether an account asked for written-out reasoning in every one of four or more calls,
    single calls mostly, and got more than chat-length answers not cut short by a budget:
    harvesting at any age, though the answers are not long (an aged account of a multi-path
    operation that asks for nothing else). A student's exercise tool or a person on a
    popular prompt asks other things too, or talks on."""
    n = snap.n
    return (
        n >= 4
        and snap.elicit == n
        and snap.out_tokens >= SUBSTANTIAL_ANSWER * n
        and snap.multi_turn * 4 < n
        and snap.ceiling * 2 <= n
    )


def evaluating(snap: AccountSnapshot) -> bool:
    """Whether most of an account's calls are at temperature 0, as evaluation suites call (a
    harvest samples the model as it answers): a benchmark's questions are the templates
    harvesters use too, and an evaluation run on them is no member of their campaign."""
    return snap.temperature_zero * 2 > snap.n


def long_single_calls(snap: AccountSnapshot) -> bool:
    """Long answers, asked for mostly in single calls rather than conversations: how a
    harvest collects (one prompt, one long answer; a swarm or a hydra dresses some up as
    conversations, a third of its calls in the blind traffic). People ask follow-ups, even
    on a popular template or a harvester's network."""
    return long_answers(snap) and snap.multi_turn * 2 < snap.n
