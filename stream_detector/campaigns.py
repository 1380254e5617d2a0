"""Campaign linking: accounts that share keys *and* harvest together are one campaign.

Hydra clusters keep every account under per-account thresholds, so the evidence only adds up
across the group. Accounts are linked through keys they share — payment fingerprint, network
prefix, client fingerprint (library/version plus request shape), system-prompt hash and
prompt-template skeletons — and each key's group of accounts is scored as a whole with the
same kind of scorecard as one account: aggregate volume, reasoning elicitation, long answers,
capability concentration, template recurrence, fresh accounts, round-the-clock,
load-balanced and lock-step timing (`stream_detector.timing`). Sharing a key is not evidence
by itself (an office shares an IP and a card, a carrier's CGNAT a prefix, an SDK release a
client fingerprint, a class its assignment); the group must also behave like a harvesting
operation, and an account joins a campaign only on a card it shares with it, when it mostly
harvests and is tied by a second key of another kind, or keeps step with the group's others
(see `CampaignLinker._attach`).

Cost: nothing per event. The linker runs in the campaign stage (`stream_detector.stage`) on
link evidence: an account registers its keys when it first appears and whenever it is
re-scored; a key's group is re-evaluated when it grows (geometrically) or after a number of
member updates, over a bounded sample of members. It reads accounts only through
`AccountSnapshot`s (`stream_detector.snapshot`), the few fields it needs frozen when the
evidence was emitted, never live account state. Memory: single-account keys wait in a bounded
FIFO until a second account shares them; groups and campaigns cap their member lists.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import islice
from typing import Any, NamedTuple, TypeVar

from stream_detector import features as ff
from stream_detector.scoring import DAY, HOUR, Term, with_huge_answers
from stream_detector.snapshot import (
    I_MULTI_TURN,
    I_PROMPT,
    SUBSTANTIAL_ANSWER,
    SUMS_HAS_ORG,
    YOUNG_S,
    AccountSnapshot,
    card_counts,
    committed,
    evaluating,
    harvest_like,
    long_answers,
    long_single_calls,
    reasoned_at_length,
    unvouched,
)
from stream_detector.state import RECENT, RECENT_SLOTS, AccountState
from stream_detector.timing import lockstep

#: Log-odds of a group of linked accounts before behavioural evidence.
GROUP_PRIOR = -8.0
#: How much sharing each kind of key says on its own (a shared card says most).
KEY_WEIGHT = {"pay": 1.5, "tpl": 0.5, "sys": 0.25, "net": 0.0, "cli": -0.5, "age": 1.0}
#: Kinds of keys that tie accounts to one operator (an office or a carrier shares the others):
#: a group of such a key may start and merge campaigns.
STRONG_KINDS = frozenset(("pay", "tpl", "age"))
#: Kinds of keys that admit an unvouched account to a campaign on their own; through any other
#: key (a popular template, a prefix, a client) a harvest-like account must share a second key
#: with it, one of the two strong.
ALONE_KINDS = frozenset(("pay", "age"))
#: Members of one key group remembered (the count goes on beyond it).
MAX_GROUP_MEMBERS = 5000
#: Members sampled when a group is evaluated.
SAMPLE_MEMBERS = 64
#: Keys seen with one account only, remembered until a second account shares them.
MAX_PENDING_KEYS = 500_000
#: Re-evaluate a group after this many member updates even if it did not grow...
REEVALUATE_EVERY = 64
#: ... or when a member updates and this much event time has passed (low-and-slow groups
#: grow their evidence with time more than with members).
REEVALUATE_AFTER_S = 600.0
#: A campaign is re-scored when it grows by a quarter, gains a kind of key, or after this much
#: time.
RESCORE_CAMPAIGN_AFTER_S = 300.0
#: Mean output tokens per call at which a group's answers count as long (neither for nor
#: against harvesting).
GROUP_LONG_ANSWER = 1000
#: Output tokens that count as one call of group volume (a typical chat answer).
OUTPUT_PER_CALL = 400.0
#: An account with this few prompts links through the templates of its latest prompt.
FEW_PROMPTS = 2
#: Share of a key's holders that must harvest for the key to count fully as an operation's,
#: and to tie an account to a campaign as its second key.
HARVEST_SHARE = 0.5
TIE_SHARE = 2 / 3
#: Share of a network's (or system prompt's) holders that must harvest for it to tie
#: long-answer harvesters (young ones, on a network) to its campaign by itself.
CROWDED_SHARE = 0.9
#: A group not suspicious on its own joins a campaign only if 1/ANCHOR of its holders are in it.
ANCHOR = 2
#: Accounts a reasoning template must have to tie its holders to a campaign by itself (three
#: that share a phrase may be a coincidence).
TEMPLATE_ALONE = 5
#: Groups smaller than this are not evaluated.
MIN_MEMBERS = 3
#: Lock-step timing's weight in a group's log-odds: none below LOCKSTEP_FROM (excess over
#: chance, see `timing`), all of it from LOCKSTEP_FULL, and only as the group's answers
#: average from SUBSTANTIAL_ANSWER to LOCKSTEP_ANSWER_RAMP more.
LOCKSTEP_WEIGHT = 4.0
LOCKSTEP_FROM = 0.3
LOCKSTEP_FULL = 0.9
LOCKSTEP_ANSWER_RAMP = 300.0

#: Kinds of link keys; a key is a 64-bit digest of its value shifted left 3 bits, plus its kind.
KINDS = ("pay", "net", "cli", "sys", "tpl", "age")
_PAY, _NET, _CLI, _SYS, _TPL, _AGE = range(len(KINDS))
#: Width of an account-creation cohort (seconds): accounts made together, used together.
COHORT_S = 1800.0
ALONE_KIND_CODES = frozenset(KINDS.index(kind) for kind in ALONE_KINDS)


@lru_cache(maxsize=1 << 16)
def _key(kind: int, value: str) -> int:
    """A link key: compact (an int, not the string) and stable across processes."""
    data = value.encode()
    return (zlib.crc32(data) << 32 | zlib.adler32(data)) << 3 | kind


def key_kind(key: int) -> str:
    return KINDS[key & 7]


def card_key(payment: str) -> int:
    """The link key of a payment fingerprint."""
    return _key(_PAY, payment)


def link_keys(f: ff.EventFeatures, state: AccountState) -> list[int]:
    """The keys an account is currently seen with (no raw personal data: all derived)."""
    keys: list[int] = []
    if f.payment:
        keys.append(card_key(f.payment))
    if f.net:
        keys.append(_key(_NET, f.net))
        created = state.created_ts
        if created is not None:
            # A creation cohort on one network: a batch of accounts made within the same half
            # hour and called through the same prefix (a swarm behind a router's egress) — a
            # router's own customers, or a carrier's, were not all made at once.
            keys.append(_key(_AGE, f"{f.net}|{int(created // COHORT_S)}"))
    if f.client:
        keys.append(_key(_CLI, f"{f.client}:{f.shape}"))
    if f.system:
        keys.append(_key(_SYS, f.system))
    # A template links accounts where it recurs in the account's latest single-turn prompts:
    # the boilerplate of multi-turn agent loops (tool results) is shared by every agent user.
    c = state.counts  # one read: the native state builds the list on each access
    prompts = c[I_PROMPT]
    if prompts and c[I_MULTI_TURN] * 2 <= state.n:
        if prompts <= FEW_PROMPTS:  # too few to recur: the templates of its latest prompt
            at = RECENT + (2 * (prompts - 1)) % RECENT_SLOTS
            templates = dict.fromkeys((c[at], c[at + 1]))
        else:
            templates = dict.fromkeys(state.templates())
        keys.extend(_key(_TPL, f"t{fp}") for fp in templates)
    return keys


def has_card(keys: list[int]) -> bool:
    """Whether one of `keys` is a payment fingerprint's."""
    return any(key & 7 == _PAY for key in keys)


@dataclass(slots=True)
class KeyGroup:
    """Accounts sharing one link key."""

    key: int
    members: dict[str, None] = field(default_factory=dict)  # an ordered set, capped
    total: int = 0
    updates: int = 0
    evaluated_ts: float = 0.0
    attached: int = 0  # members already considered for its campaign
    next_size: int = MIN_MEMBERS
    #: Share of its (sampled) holders that harvest, as of its last evaluation.
    share: float = 0.0
    logit: float = GROUP_PRIOR
    terms: list[Term] = field(default_factory=list)
    campaign: str | None = None


@dataclass(slots=True)
class Campaign:
    """Accounts linked through suspicious key groups: one operation."""

    campaign_id: str
    first_ts: float
    members: dict[str, None] = field(default_factory=dict)
    keys: dict[int, None] = field(default_factory=dict)
    #: How many of `keys` are of each kind (index in `KINDS`).
    kind_counts: list[int] = field(default_factory=lambda: [0] * len(KINDS))
    logit: float = GROUP_PRIOR
    terms: list[Term] = field(default_factory=list)
    policy: list[Any] = field(default_factory=list)
    #: When the campaign was last scored, and its members and kinds of keys then.
    scored_ts: float = 0.0
    scored_size: int = 0
    scored_kinds: int = 0
    #: Severity level members were last alerted at, and how many members had been by then.
    member_level: int = 0
    members_alerted: int = 0

    def add_key(self, key: int) -> bool:
        """Add a link key (counted by its kind); whether it was new."""
        if key in self.keys:
            return False
        self.keys[key] = None
        self.kind_counts[key & 7] += 1
        return True

    def drop_key(self, key: int) -> None:
        """Remove a link key, if it is one of the campaign's."""
        if key in self.keys:
            del self.keys[key]
            self.kind_counts[key & 7] -= 1


class _Ties(NamedTuple):
    """A group's key as a tie to the campaign it is the key of (`CampaignLinker._ties`)."""

    group: KeyGroup
    campaign: Campaign
    kind: str
    alone: bool
    vouched: bool
    enough: bool
    crowded: bool
    own_card: Callable[[], bool]
    in_step: set[str]


def latest(members: dict[str, None], n: int = SAMPLE_MEMBERS) -> list[str]:
    """The `n` most recently joined members (a bounded sample, O(n))."""
    return list(islice(reversed(members), n))


def campaign_id_for(key: int) -> str:
    """Stable id of a campaign, from the first key that revealed it (not reversible)."""
    return "campaign-" + hashlib.sha256(key.to_bytes(9, "little")).hexdigest()[:16]


@dataclass(slots=True)
class LinkerChanges:
    """Keys of what changed in a `CampaignLinker` since its last export."""

    pending: set[int] = field(default_factory=set)
    keys_of: set[str] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)
    campaign_of: set[str] = field(default_factory=set)
    campaigns: set[str] = field(default_factory=set)


K = TypeVar("K")
V = TypeVar("V")


def ordered_changes(d: dict[K, V], dirty: set[K]) -> list[tuple[K, V | None]] | None:
    """The changes to an insertion-ordered dict whose entries only ever move to the end (or
    go): the removed keys, then the changed ones present in their order, which is the dict's
    tail. None if the tail holds an entry not marked dirty (the invariant does not hold)."""
    present = sum(1 for key in dirty if key in d)
    tail = list(islice(reversed(d), present))
    tail.reverse()
    if not all(key in dirty for key in tail):
        return None
    gone: list[tuple[K, V | None]] = [(key, None) for key in dirty if key not in d]
    return gone + [(key, d[key]) for key in tail]


def apply_updates(d: dict[K, V], updates: dict[K, V | None]) -> None:
    """Apply keyed changes: None removes the entry, anything else sets it."""
    for key, value in updates.items():
        if value is None:
            d.pop(key, None)
        else:
            d[key] = value


def apply_ordered(d: dict[K, V], changes: list[tuple[K, V | None]]) -> None:
    """Apply `ordered_changes` output: the changed entries leave, the present ones come back
    at the end in their order."""
    for key, _ in changes:
        d.pop(key, None)
    for key, value in changes:
        if value is not None:
            d[key] = value


class CampaignLinker:
    """Key groups, their evaluation, and the campaigns they form."""

    def __init__(
        self,
        lookup: Callable[[str], AccountSnapshot | None],
        suspicious_logit: float,
        candidate_logit: float,
    ) -> None:
        self._lookup = lookup
        #: A key group this suspicious on its own may start and merge campaigns.
        self.suspicious_logit = suspicious_logit
        #: A key group at least this suspicious joins (or starts) a candidate campaign, which
        #: is then judged as a whole: weak groups can add up (resellers spread over cards).
        self.candidate_logit = candidate_logit
        # FIFO of single-account keys. An OrderedDict: deleting the oldest of a plain dict
        # leaves dummies that make every later `next(iter(...))` scan them (quadratic).
        self._pending: OrderedDict[int, str] = OrderedDict()
        self._groups: dict[int, KeyGroup] = {}
        #: Every key each account has registered (it is a member of those keys' groups) and
        #: when it last did, in that order: admission asks which of a member's keys tie it to
        #: a campaign, O(its keys) instead of O(the campaign's keys and members).
        self._keys_of: dict[str, tuple[float, tuple[int, ...]]] = {}
        self.campaign_of: dict[str, str] = {}
        self.campaigns: dict[str, Campaign] = {}
        #: What changed since the last export (`export_changes`): the stage checkpoints
        #: these, not the whole linker, between full exports.
        self._dirty = LinkerChanges()

    def export_state(self) -> dict[str, Any]:
        """Everything but the account lookup, for the shared-state checkpoint (a full one:
        the changes tracked so far are part of it)."""
        self._dirty = LinkerChanges()
        return {
            "pending": self._pending,
            "groups": self._groups,
            "keys_of": self._keys_of,
            "campaign_of": self.campaign_of,
            "campaigns": self.campaigns,
        }

    def import_state(self, state: dict[str, Any]) -> None:
        """Restore `export_state` output."""
        self._pending = state["pending"]
        self._groups = state["groups"]
        self._keys_of = state["keys_of"]
        self.campaign_of = state["campaign_of"]
        self.campaigns = state["campaigns"]
        self._dirty = LinkerChanges()

    def export_changes(self) -> dict[str, Any] | None:
        """What changed since the last export, for an incremental checkpoint (None if the
        changes cannot be expressed as one: then take a full export)."""
        dirty, self._dirty = self._dirty, LinkerChanges()
        pending = ordered_changes(self._pending, dirty.pending)
        keys_of = ordered_changes(self._keys_of, dirty.keys_of)
        if pending is None or keys_of is None:
            return None
        return {
            "pending": pending,
            "keys_of": keys_of,
            "groups": {k: self._groups.get(k) for k in dirty.groups},
            "campaign_of": {a: self.campaign_of.get(a) for a in dirty.campaign_of},
            "campaigns": {c: self.campaigns.get(c) for c in dirty.campaigns},
        }

    def discard_changes(self) -> None:
        """Forget what changed (nobody will export it)."""
        self._dirty = LinkerChanges()

    def apply_changes(self, changes: dict[str, Any]) -> None:
        """Apply `export_changes` output (in the order they were exported)."""
        apply_ordered(self._pending, changes["pending"])
        apply_ordered(self._keys_of, changes["keys_of"])
        apply_updates(self._groups, changes["groups"])
        apply_updates(self.campaign_of, changes["campaign_of"])
        apply_updates(self.campaigns, changes["campaigns"])

    @property
    def groups_tracked(self) -> int:
        return len(self._groups)

    def observe(self, account_id: str, keys: list[int], now: float) -> list[Campaign]:
        """Register an account's current keys; return campaigns whose evidence changed."""
        changed: list[Campaign] = []
        dirty = self._dirty
        groups, pending = self._groups, self._pending
        entry = self._keys_of.pop(account_id, None)
        # An account none of whose keys another holds (most: their only evidence is their card
        # at their first call) is remembered by its pending keys alone; its key list, which
        # admission reads for keys in groups, is kept once one of its keys is shared.
        if entry is not None or any(
            key in groups or pending.get(key, account_id) != account_id for key in keys
        ):
            dirty.keys_of.add(account_id)
            known = () if entry is None else entry[1]
            if not all(key in known for key in keys):
                known = (*known, *(key for key in dict.fromkeys(keys) if key not in known))
            self._keys_of[account_id] = (now, known)
        for key in keys:
            group = groups.get(key)
            if group is None:
                first = pending.get(key)
                if first is None:
                    self._remember_pending(key, account_id)
                    continue
                if first == account_id:
                    continue
                del pending[key]
                dirty.pending.add(key)
                group = groups[key] = KeyGroup(key)
                self._join(group, first)
            dirty.groups.add(key)
            self._join(group, account_id)
            group.updates += 1
            if group.total >= group.next_size or (
                group.total >= MIN_MEMBERS
                and (
                    group.updates % REEVALUATE_EVERY == 0
                    or now - group.evaluated_ts >= REEVALUATE_AFTER_S
                )
            ):
                campaign = self._evaluate(group, now)
                if campaign is not None and campaign not in changed:
                    changed.append(campaign)
            elif group.campaign is not None and account_id not in self.campaign_of:
                campaign = self._consider(group, account_id, now)
                if campaign is not None and campaign not in changed:
                    changed.append(campaign)
        return changed

    def _remember_pending(self, key: int, account_id: str) -> None:
        pending = self._pending
        pending[key] = account_id
        self._dirty.pending.add(key)
        if len(pending) > MAX_PENDING_KEYS:
            self._dirty.pending.add(pending.popitem(last=False)[0])

    def _with_snapshots(self, members: list[str]) -> list[tuple[str, AccountSnapshot]]:
        """The `members` the stage holds a snapshot of, with it."""
        lookup = self._lookup
        return [(m, s) for m in members if (s := lookup(m)) is not None]

    @staticmethod
    def _join(group: KeyGroup, account_id: str) -> None:
        if account_id in group.members:
            return
        group.total += 1
        if len(group.members) < MAX_GROUP_MEMBERS:
            group.members[account_id] = None

    def _evaluate(self, group: KeyGroup, now: float) -> Campaign | None:
        group.evaluated_ts = now
        while group.next_size <= group.total:
            group.next_size = max(group.next_size + 1, int(group.next_size * 1.5))
        sample = latest(group.members)
        is_card = group.key & 7 == _PAY
        if is_card and (own := self._card_only(group)) is not None:
            # A campaign of a card alone whose holders mostly call from another campaign's
            # own servers is that campaign's: a reseller pays with several cards from the
            # same machines, and one card's holders, mostly its customers' chat, may be too
            # weak a campaign to be named on their own.
            campaign = self._operating(sample, harvesters_only=False)
            if campaign is not None and campaign is not own:
                self._merge(campaign, self.campaigns.pop(own.campaign_id))
                return self._settle(campaign, now)
        counts = card_counts if is_card else harvest_like
        looked = self._with_snapshots(sample)
        # Holders in lock-step with the others count by their own traffic, their age aside
        # (aged accounts of one scheduler are no alibi).
        lock, in_step = lockstep(looked)
        states = [s for m, s in looked if counts(s, now) or (m in in_step and s.harvest)]
        share = group.share = len(states) / len(sample)
        if len(states) < MIN_MEMBERS:
            return None
        total = max(len(states), round(group.total * share))
        group.logit, group.terms = assess_group(key_kind(group.key), total, states, now, lock=lock)
        if share < HARVEST_SHARE:
            # A key most of whose holders do not harvest (a popular phrase, a busy prefix) is
            # not an operation's: its few harvest-like holders do not make it one.
            weight = max(4.0 * (share - HARVEST_SHARE), -3.0)
            group.terms.append(("group_harvest_share", share, weight))
            group.logit += weight
        if group.logit < self.candidate_logit:
            if is_card and share >= TIE_SHARE:
                counting = [m for m, s in looked if counts(s, now)]
                campaign = self._operating(counting)
                if campaign is not None:
                    return self._adopt_card(group, campaign, now)
            return None
        return self._attach(group, now, in_step)

    def _card_only(self, group: KeyGroup) -> Campaign | None:
        """The campaign of a card's group, if cards are all it holds (its key counts say so
        without a look at its keys)."""
        campaign = self.campaigns.get(group.campaign) if group.campaign is not None else None
        if campaign is None or sum(campaign.kind_counts) != campaign.kind_counts[_PAY]:
            return None
        return campaign

    def _operating(self, holders: list[str], harvesters_only: bool = True) -> Campaign | None:
        """The campaign that most of `holders` (a card's holders) reach through one of its
        infrastructure keys (a network prefix or system prompt it holds and, if
        `harvesters_only`, that mostly its harvesters share), if any: a reseller pays with
        several cards from the same servers, and each card's few holders alone are no
        candidate."""
        votes: dict[str, int] = {}
        groups, keys_of = self._groups, self._keys_of
        least = HARVEST_SHARE if harvesters_only else 0.0
        for member in holders:
            seen: set[str] = set()
            for key in keys_of.get(member, (0.0, ()))[1]:
                if (
                    key & 7 in (_NET, _SYS)
                    and (g := groups.get(key)) is not None
                    and g.campaign is not None
                    and g.campaign not in seen
                    and g.share >= least
                    and (c := self.campaigns.get(g.campaign)) is not None
                    and key in c.keys
                ):
                    seen.add(g.campaign)
                    votes[g.campaign] = votes.get(g.campaign, 0) + 1
        if not votes:
            return None
        best = max(votes, key=votes.__getitem__)
        if votes[best] * 2 <= len(holders) or votes[best] < 2:
            return None
        return self.campaigns[best]

    def _adopt_card(self, group: KeyGroup, campaign: Campaign, now: float) -> Campaign:
        """Make a card the campaign's and admit its unvouched holders (not yet, as the card
        rule of `_admissible` would, its org-less chatting ones: the card is not shown to be
        the campaign's own until its holders are members)."""
        campaign.add_key(group.key)
        group.campaign = campaign.campaign_id
        group.attached = len(group.members)
        admitted = [
            m
            for m in group.members
            if m not in campaign.members
            and (state := self._lookup(m)) is not None
            and unvouched(state, now)
        ]
        self._admit(campaign, admitted)
        return self._settle(campaign, now)

    def _admit(self, campaign: Campaign, members: list[str]) -> None:
        """Make `members` the campaign's."""
        self._dirty.campaign_of.update(members)
        campaign_of, cid = self.campaign_of, campaign.campaign_id
        for member in members:
            campaign.members[member] = None
            campaign_of[member] = cid

    def _attach(self, group: KeyGroup, now: float, in_step: set[str]) -> Campaign | None:
        """Put a candidate group into a campaign.

        A *strong* group (a shared card or template, or a group suspicious on its own) may
        start a campaign and merge the campaigns it bridges; a weak one (a shared network
        prefix or client, merely a candidate) only extends an existing campaign. Members are
        admitted if unvouched and tied by a shared card, or harvest-like and tied by two of the
        campaign's keys, one a card or template: a CGNAT neighbour on a popular SDK, or a
        newcomer who happens to use a popular template, is not drawn in. Holders `in_step`
        (lock-step timing with the group's others) that harvest in single calls are tied by
        the key and their timing, if most of the group harvests.
        """
        kind = key_kind(group.key)
        # A template, or any group suspicious on its own, is strong only if most of its
        # holders harvest: a popular phrase must not merge the campaigns its users are in.
        # A client never is: every user of an SDK release shares it, and a campaign of a
        # class's card would merge through it into any harvest on the same library. A
        # network nearly all of whose holders harvest (a candidate, so young long-answer
        # harvesters among them) is an operation's exit, strong though it is not suspicious
        # yet: a swarm's throwaway accounts take turns on a proxy's addresses, a few each,
        # sharing nothing else.
        strong = (
            (kind in STRONG_KINDS and kind != "tpl")
            or (
                kind != "cli"
                and group.share >= HARVEST_SHARE
                and (kind == "tpl" or group.logit >= self.suspicious_logit)
            )
            or (kind == "net" and group.share >= CROWDED_SHARE)
        )
        # Members joined since the last look, and a bounded sample of the latest ones (an
        # account may have become harvest-like, or tied by a second key, since).
        fresh = list(islice(group.members, group.attached, None))
        group.attached += len(fresh)
        considered = list(dict.fromkeys((*fresh, *latest(group.members))))
        campaign_of = self.campaign_of
        home = self.campaigns.get(group.campaign) if group.campaign is not None else None
        if (
            home is not None
            and group.key in home.keys
            and all(campaign_of.get(m) == group.campaign for m in considered)
        ):
            # Everyone it would consider is already in its campaign: nothing to admit or
            # merge (the common case for a campaign's own keys), only a re-score perhaps.
            return self._settle(home, now)
        found = dict.fromkeys(c for m in considered if (c := campaign_of.get(m)) is not None)
        if group.campaign is not None:
            found = {group.campaign: None, **found}
        ids = [c for c in found if c in self.campaigns]
        if (
            ids
            and group.campaign is None
            and group.logit < self.suspicious_logit
            and sum(1 for m in considered if m in campaign_of) * ANCHOR < len(considered)
        ):
            # A weak group with a member or two in a campaign is not the campaign's: it must
            # not draw its other holders in (a class whose one student was linked).
            ids = []
        if kind == "tpl" and len(ids) > 1:
            # A phrasing shared by a campaign and a weak one getting chat-length answers (a
            # class's, on its exercise template) does not make them one operation: only
            # campaigns suspicious on their own, or harvesting long answers, merge through a
            # template (the others' holders may still be admitted one by one).
            merging = [c for c in ids if self._harvesting(self.campaigns[c])]
            ids = merging or ids
        if ids:
            campaign = min((self.campaigns[c] for c in ids), key=lambda c: c.first_ts)
            if strong:
                for other_id in ids:
                    if other_id != campaign.campaign_id:
                        self._merge(campaign, self.campaigns.pop(other_id))
        elif strong:
            campaign = Campaign(campaign_id_for(group.key), now)
        else:
            return None
        added = campaign.add_key(group.key)
        ties = self._ties(group, campaign, now, in_step)
        admitted = [
            member
            for member in considered
            if member not in campaign.members
            and (state := self._lookup(member)) is not None
            and self._admissible(member, state, ties, now)
        ]
        alone = ties.alone
        # The key is the campaign's only if most of the group's eligible holders are (or now
        # become) its members: a key it merely shares with others (a popular phrase, a
        # class's card that one harvester also used) must not tie those others to it later.
        eligible = owned = 0
        for member in considered:
            state = self._lookup(member)
            if state is not None and (unvouched(state, now) if alone else harvest_like(state, now)):
                eligible += 1
                owned += member in campaign.members or member in admitted
        if added and owned * 2 < eligible and len(campaign.keys) > 1:
            campaign.drop_key(group.key)
        # Nobody it could name is no campaign (yet); nor are one or two holders of a group that
        # is merely a candidate (a class's card with a student or two who got long answers:
        # as a campaign, a template it shares with a hydra would merge it into the hydra's).
        if not campaign.members and (
            not admitted or (len(admitted) < MIN_MEMBERS and group.logit < self.suspicious_logit)
        ):
            campaign.drop_key(group.key)
            return None
        self.campaigns[campaign.campaign_id] = campaign
        group.campaign = campaign.campaign_id
        self._dirty.campaigns.add(campaign.campaign_id)
        self._admit(campaign, admitted)
        return self._settle(campaign, now)

    def _ties(self, group: KeyGroup, campaign: Campaign, now: float, in_step: set[str]) -> _Ties:
        """What a group's key ties to the campaign it is the key of (see `_admissible`)."""
        kind = key_kind(group.key)
        alone = kind in ALONE_KINDS
        vouched = alone or self._vouches(group.key)
        # A reasoning template that is an operation's by its own group's evidence ties the
        # accounts that mostly ask for reasoning, and get long answers in single calls (or
        # ask for it in every call, `reasoned_at_length`), with it alone: one actor's
        # accounts may share nothing else (own cards, networks and clients for each).
        # People on the same template hold conversations; an agent tool's boilerplate (its
        # side calls) is shared by all its users: both need a second tie, but for a young
        # account harvesting agent runs in single calls with long answers (a swarm's). So
        # does an account's first call: a newcomer may try a popular prompt once.
        enough = (
            kind == "tpl"
            and vouched
            and group.total >= TEMPLATE_ALONE
            and _value(group.terms, "group_reasoning_elicitation") >= 0.6
        )
        # A network nearly all of whose holders harvest is an operation's infrastructure (a
        # router's addresses that a swarm of throwaway accounts goes through): it ties the
        # young accounts on it that harvest long answers themselves, mostly in single calls
        # (a swarm dresses some up as conversations), without a second key. So does a system
        # prompt nearly all of whose holders harvest, for aged accounts too: an operation's
        # own prompt is nobody else's (a hydra's accounts, bought aged, on cards and networks
        # too few share yet), while a residential prefix's other holders may be anyone.
        crowded = kind in ("net", "sys") and group.share >= CROWDED_SHARE
        # Whether the card is the campaign's own, asked once (and only if a member needs it).
        own_card = cache(lambda: self._owns_card(group, campaign, now))
        return _Ties(group, campaign, kind, alone, vouched, enough, crowded, own_card, in_step)

    def _admissible(self, member: str, state: AccountSnapshot, ties: _Ties, now: float) -> bool:
        """Whether the key of `ties` draws `member` (not yet in its campaign) in."""
        kind = ties.kind
        if kind == "cli":  # a client ties nobody, neither first nor second
            return False
        if kind == "tpl" and evaluating(state):  # a benchmark's questions, at temperature 0
            return False
        if ties.alone:
            # A card shared with a campaign is tie enough without the member's own traffic
            # giving it away: a reseller passes its customers' chat through between harvests.
            # A creation cohort is, for accounts that harvest long answers themselves.
            if kind == "pay":
                return unvouched(state, now) or (not state.has_org and ties.own_card())
            return committed(state) and long_answers(state)
        in_step = member in ties.in_step
        if not ((harvest_like(state, now) or (in_step and state.harvest)) and committed(state)):
            return False
        single = long_single_calls(state)
        young = state.created_key >= now - YOUNG_S
        return (
            (in_step and ties.group.share >= HARVEST_SHARE and single)
            or (
                ties.enough
                and state.n >= 2
                and state.elicit * 10 >= 6 * state.n
                and (state.agentic * 2 < state.n or (single and young))
                and (single or reasoned_at_length(state))
            )
            or (ties.crowded and single and (young or kind == "sys") and state.n >= 2)
            or self._tied(member, ties.campaign, ties.group.key, ties.vouched)
        )

    def _consider(self, group: KeyGroup, account_id: str, now: float) -> Campaign | None:
        """The campaign a group's key is one of, with `account_id` admitted if the key draws it
        in: a holder's new evidence is judged at once, not at the group's next look (a
        reseller's accounts come one by one, a few calls each; a swarm's stop after a few)."""
        campaign = self.campaigns.get(group.campaign) if group.campaign is not None else None
        state = self._lookup(account_id)
        if (
            campaign is None
            or group.key not in campaign.keys
            or state is None
            or not self._admissible(account_id, state, self._ties(group, campaign, now, set()), now)
        ):
            return None
        self._admit(campaign, [account_id])
        return self._settle(campaign, now)

    def _owns_card(self, group: KeyGroup, campaign: Campaign, now: float) -> bool:
        """Whether a card is the campaign's own, so that any holder without a verified org is
        its operator's (a reseller's account carrying its customers' chat): most of the card's
        holders are members that harvest themselves (members drawn in by this rule do not
        count: a class arriving one student at a time must not draw itself in). A card that
        one harvester shares with a class or a family is not the campaign's."""
        if group.key not in campaign.keys:
            return False
        campaign_of, cid, lookup = self.campaign_of, campaign.campaign_id, self._lookup
        inside = sum(
            1
            for member in group.members
            if campaign_of.get(member) == cid
            and (snap := lookup(member)) is not None
            and unvouched(snap, now)
        )
        return inside * 2 > group.total

    def _settle(self, campaign: Campaign, now: float) -> Campaign:
        """Re-score a campaign just looked at if it grew by a quarter, gained a kind of key
        or was last scored a while ago; it changed (its alerts are decided next)."""
        self._dirty.campaigns.add(campaign.campaign_id)
        if (
            len(campaign.members) * 4 >= campaign.scored_size * 5
            or sum(1 for count in campaign.kind_counts if count) > campaign.scored_kinds
            or now - campaign.scored_ts >= RESCORE_CAMPAIGN_AFTER_S
        ):
            self._rescore(campaign, now)
        return campaign

    def _merge(self, into: Campaign, other: Campaign) -> None:
        dirty = self._dirty
        dirty.campaigns.add(other.campaign_id)
        dirty.campaign_of.update(other.members)
        dirty.groups.update(other.keys)
        into.members.update(other.members)
        for key in other.keys:
            into.add_key(key)
        for member in other.members:
            self.campaign_of[member] = into.campaign_id
        for key in other.keys:
            if (group := self._groups.get(key)) is not None:
                group.campaign = into.campaign_id

    def _rescore(self, campaign: Campaign, now: float) -> None:
        """Score the campaign as one actor: all its harvest-like members over all its keys,
        more suspicious the more kinds of keys tie them together."""
        campaign.scored_ts = now
        campaign.scored_size = len(campaign.members)
        campaign.scored_kinds = sum(1 for count in campaign.kind_counts if count)
        looked = self._with_snapshots(latest(campaign.members))
        states = [s for _, s in looked]
        counts = campaign.kind_counts
        kinds = {KINDS[i] for i, count in enumerate(counts) if count}
        strongest = max(kinds, key=KEY_WEIGHT.__getitem__)
        if len(states) < MIN_MEMBERS:
            return
        total = len(campaign.members)
        same_kind = counts[KINDS.index(strongest)]
        per_key = total / same_kind
        lock = lockstep(looked)[0]
        campaign.logit, campaign.terms = assess_group(strongest, total, states, now, per_key, lock)
        bonus = min(0.75 * (len(kinds) - 1), 1.5)
        if bonus:
            campaign.terms.append(("shared_key_kinds", float(len(kinds)), bonus))
            campaign.logit += bonus

    def joins_by_card(self, keys: list[int]) -> bool:
        """Whether one of `keys` is a card some campaign already pays with (its holder may be
        drawn in without its own evidence: keep its snapshot)."""
        for key in keys:
            if key & 7 in ALONE_KIND_CODES:
                group = self._groups.get(key)
                if group is not None and group.campaign is not None:
                    return True
        return False

    def _tied(self, member: str, campaign: Campaign, besides: int, vouched: bool) -> bool:
        """Whether a member met through key `besides` shares a second of the campaign's keys
        with it: any, if `besides` vouches, else one that does; and one that mostly harvesters
        share (a residential prefix or a popular phrase that one member also has is no tie)."""
        groups = self._groups
        kind = besides & 7
        for key in self._keys_of.get(member, (0.0, ()))[1]:
            if (
                key & 7 != kind  # another kind: two templates of one prompt are one tie
                and key & 7 != _CLI  # thousands run one SDK release: a client ties nobody
                and key in campaign.keys
                and (vouched or self._vouches(key))
                and (group := groups.get(key)) is not None
                and group.share >= TIE_SHARE  # a key of harvesters, not a busy prefix
                and member in group.members
            ):
                return True
        return False

    def expire(self, horizon: float, cap: int) -> None:
        """Forget the keys of accounts without evidence since `horizon` (or beyond `cap`):
        idle past the stage's expiry, they have no snapshot to admit either."""
        keys_of = self._keys_of
        dropped: list[str] = []
        for account_id, (ts, _) in keys_of.items():
            if ts >= horizon and len(keys_of) - len(dropped) <= cap:
                break
            dropped.append(account_id)
        for account_id in dropped:
            del keys_of[account_id]
        self._dirty.keys_of.update(dropped)

    def _harvesting(self, campaign: Campaign) -> bool:
        """Whether a campaign is suspicious on its own or its members get long answers."""
        return (
            campaign.logit >= self.suspicious_logit
            or _value(campaign.terms, "group_output_tokens") >= GROUP_LONG_ANSWER
        )

    def _vouches(self, key: int) -> bool:
        """Whether a key ties strongly: a card, or a template whose own group harvests, most of
        its holders harvesting (a popular phrase that newcomers and a campaign both use does
        not)."""
        kind = key_kind(key)
        if kind == "tpl":
            group = self._groups.get(key)
            return (
                group is not None
                and group.logit >= self.suspicious_logit
                and group.share >= HARVEST_SHARE
            )
        return kind in STRONG_KINDS


#: A group's holder counts for at most this many times its typical (lower-median) holder.
DOMINANT = 4.0
#: The small-budget term (`features.SMALL_BUDGET`): from this share of a group's calls on a
#: small budget, in full SMALL_BUDGET_RAMP above it, when at most SHORT_LONG_SHARE -
#: SHORT_RAMP of its answers are long, fading out at SHORT_LONG_SHARE.
SMALL_BUDGET_FROM = 0.5
SMALL_BUDGET_RAMP = 0.35
SMALL_BUDGET_WEIGHT = -2.5
SHORT_LONG_SHARE = 0.6
SHORT_RAMP = 0.2


def assess_group(
    kind: str,
    total: int,
    snaps: list[AccountSnapshot],
    now: float,
    per_key: float = 0.0,
    lock: float | None = None,
) -> tuple[float, list[Term]]:
    """Score `total` accounts (`snaps` a sample) linked by a key of `kind` as one actor;
    `lock`: their lock-step timing (`timing.lockstep`), if it could be measured."""
    m = len(snaps)
    # The counts add up in C (one tuple per snapshot, see `AccountSnapshot.sums`); only what
    # depends on `now` is read member by member.
    sums = [s.sums for s in snaps]
    totals: list[float] = list(map(sum, zip(*sums, strict=True)))
    rates = [s.n for s in snaps]
    # What adds up across the group: no holder counts for more than DOMINANT times its
    # typical holder (an aged batch job or two on a class's exercise template are not the
    # class's traffic; they are judged as accounts).
    factors = _dominance(rates)
    if factors is not None:
        for x, f in zip(sums, factors, strict=True):
            if f < 1.0:
                totals = [t - (1.0 - f) * v for t, v in zip(totals, x, strict=True)]
                totals[SUMS_HAS_ORG] += (1.0 - f) * x[SUMS_HAS_ORG]  # members, not calls
    n, elicit, agentic, limited, *caps, prompts, out, org, repeats, long, small = totals
    first = min(s.first_ts for s in snaps)
    last = max(s.last_ts for s in snaps)
    young = now - 14 * DAY
    hour = int(now // HOUR)
    fresh = hod = 0
    # Calls an hour, and output tokens an hour: what a harvest is after, however many calls
    # (the same cap, against the typical holder active now).
    hourly = []
    outs = []
    for s in snaps:
        fresh += s.created_key > young
        r = s._rate if s._rate_hour == hour else s.hourly_rate(now)  # cached per hour
        hourly.append(r)
        outs.append(r * s.out_tokens / (s.n or 1))
        hod |= s.hod_mask
    factors = _dominance(hourly)
    if factors is None:
        rate, out_rate = sum(hourly), sum(outs)
    else:
        rate = sum(f * r for f, r in zip(factors, hourly, strict=True))
        out_rate = sum(f * o for f, o in zip(factors, outs, strict=True))
    n = n or 1
    terms: list[Term] = []
    add = terms.append
    scale = total / m  # members beyond the sample add volume at the sample's average
    add(("group_size", float(total), _clamp(0.8 * math.log2(total / 2.0), 0.0, 2.0)))
    # One card paying for many accounts is the strongest tie of all; more so the more accounts.
    per_key = per_key or float(total)
    weight = KEY_WEIGHT[kind]
    if kind == "pay":
        weight = _clamp(weight + 0.5 * math.log2(max(per_key, 1.0) / 3.0), weight, 2.5)
    add((f"shared_{kind}", per_key, weight))
    # Volume in calls, or in long answers (a call of OUTPUT_PER_CALL tokens counting as one):
    # low-and-slow networks keep the calls few and make every answer count.
    volume = max(rate, out_rate / OUTPUT_PER_CALL) * scale
    add(("group_volume", volume, _clamp(0.8 * math.log2(max(volume, 0.1) / 100.0), -1.5, 2.5)))
    elicit_share = elicit / n
    add(("group_reasoning_elicitation", elicit_share, 3.0 * elicit_share))
    out_mean = out / n
    # Harvests are after long answers (written-out reasoning, whole programs): a group whose
    # answers are chat-length (a class on one assignment, an office) is not harvesting.
    out_weight = _clamp(1.2 * math.log2(max(out_mean, 1.0) / GROUP_LONG_ANSWER), -2.5, 1.2)
    add(("group_output_tokens", out_mean, with_huge_answers(out_weight, out_mean)))
    budget_share = small / n
    if budget_share > SMALL_BUDGET_FROM:
        # Calls that leave room for a chat-length answer at most, and get one, are not after
        # reasoning traces or whole programs, whatever they ask for (a school's tutoring app
        # on exercises that say "show your steps"); a harvest on a small budget fills it.
        short = _clamp((SHORT_LONG_SHARE - long / n) / SHORT_RAMP, 0.0, 1.0)
        add(
            (
                "group_small_budget",
                budget_share,
                SMALL_BUDGET_WEIGHT
                * short
                * min((budget_share - SMALL_BUDGET_FROM) / SMALL_BUDGET_RAMP, 1.0),
            )
        )
    per_prompt = prompts or 1
    concentration = max(agentic / n, *(c / per_prompt for c in caps))
    add(
        (
            "group_capability_concentration",
            concentration,
            _clamp(3.0 * (concentration - 0.5), 0.0, 1.5),
        )
    )
    if prompts >= 4 * m:  # members' own prompts recur: templated, automated traffic
        repetition = repeats / prompts
        add(("group_template_repetition", repetition, _clamp(2.0 * (repetition - 0.3), 0.0, 1.0)))
    fresh_share = fresh / m
    # Fresh accounts are the raw material of campaigns; old ones are no alibi (bought, aged).
    add(("group_fresh_accounts", fresh_share, _clamp(3.0 * (fresh_share - 0.3), 0.0, 1.5)))
    org_share = org / m
    if org_share:
        add(("group_verified_org", org_share, -3.0 * org_share))
    span_h = (last - first) / HOUR
    coverage = hod.bit_count() / 24.0
    if span_h >= 20 and coverage >= 0.85:
        add(("group_round_the_clock", coverage, 1.0))
    if m >= 5:
        mean = sum(rates) / m
        cv = math.sqrt(sum((x - mean) ** 2 for x in rates) / m) / mean if mean else 1.0
        add(("load_balanced", cv, _clamp(1.0 - 2.0 * cv, 0.0, 0.8)))
    if lock is not None:
        # Accounts firing in the same minutes, call after call, are one scheduler's; but a
        # class on one exercise keeps step too, and gets chat-length answers: the term counts
        # in full only for long ones.
        add(
            (
                "group_lockstep",
                lock,
                LOCKSTEP_WEIGHT
                * _clamp((lock - LOCKSTEP_FROM) / (LOCKSTEP_FULL - LOCKSTEP_FROM), 0.0, 1.0)
                * _clamp((out_mean - SUBSTANTIAL_ANSWER) / LOCKSTEP_ANSWER_RAMP, 0.0, 1.0),
            )
        )
    limited_share = limited / n
    if limited_share:
        add(("group_rate_limited", limited_share, min(4.0 * limited_share, 1.0)))
    logit = GROUP_PRIOR
    for term in terms:
        logit += term[2]
    return logit, terms


def _dominance(values: Sequence[float]) -> list[float] | None:
    """Factors (at most 1) that bring each holder's value down to DOMINANT times the typical
    (lower-median) positive one; None when no holder is above it (holders alike, the common
    case, need no sort). Zero values (idle holders) add nothing either way."""
    active = [v for v in values if v > 0]
    if not active or max(active) <= DOMINANT * min(active):
        return None
    cap = DOMINANT * low_median(active)
    return [cap / v if v > cap else 1.0 for v in values]


def low_median(values: Sequence[float]) -> float:
    """The lower median (of two holders, the smaller: one of them is the typical one)."""
    return sorted(values)[(len(values) - 1) // 2]


def _value(terms: list[Term], signal: str) -> float:
    """The value of a signal among `terms` (0 if absent)."""
    for name, value, _ in terms:
        if name == signal:
            return value
    return 0.0


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x
