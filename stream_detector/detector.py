"""The detection core's account side: events in, account alerts and link evidence out, no I/O.

`Detector.process_features` is the whole per-event path: de-duplicate, apply lateness, fold
the event's features into its account's state, and — only when the account's evidence has
moved (by a fraction of itself, or after a couple of hours) — score it and run the alert
policy. Both drivers (`replay` and the Kafka worker) call exactly this on
`features.parse_features` of each raw event, so they decide the same on the same events
(`process` takes a parsed `Event`).

Decisions depend only on each account's own event sequence and on event time, never on wall
clock or arrival batching; hence one Detector per Kafka partition agrees with one Detector over
a whole file, provided an account's events keep their order.

Campaigns are not decided here: when an account is first seen (and on its next two events
while they look like harvesting), re-scored, or labelled benign, the detector appends a
`LinkEvidence` (link keys and a snapshot of the account) to `evidence`, and the driver hands
it to the campaign stage (`stream_detector.stage`): directly in `replay`
(`stream_detector.pipeline.Pipeline`), through an internal topic on Kafka. The account side
never reads campaign state, so nothing flows back and each side stays deterministic.
"""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass, field

from stream_detector import features as ff
from stream_detector.alerts import Alert
from stream_detector.campaigns import card_key, link_keys
from stream_detector.config import DetectorConfig
from stream_detector.dedupe import Deduplicator
from stream_detector.events import Event
from stream_detector.labels import Label
from stream_detector.model import OnlineModel
from stream_detector.scoring import HOUR, Term, assess, sigmoid
from stream_detector.snapshot import (
    I_MULTI_TURN,
    YOUNG_S,
    AccountSnapshot,
    looks_harvest,
    may_join_by_card,
)
from stream_detector.stage import LinkEvidence, policy_of
from stream_detector.state import AccountState, AccountStore

#: Version of the shared-state checkpoint (`export_model`); 3: the campaign linker moved out
#: to the campaign stage.
SHARED_STATE_VERSION = 3
#: An account's first events up to this one send link evidence if they look like harvesting,
#: or if a card and long answers could draw it into a campaign (then only re-scores do):
#: throwaway accounts of a swarm make a handful of calls, and the first may not show what
#: they are for. Other first events send nothing: on traffic of many fresh accounts that was
#: most of the campaign stage's load.
LINK_EARLY = 3
#: A harvest-like account's events that send its snapshot alone (no keys: no group is
#: evaluated on it, the next evaluation reads it) between its early re-scores (4th, 8th, then
#: 24th with the default `rescore_every`): lock-step timing needs minute masks spanning 20+
#: minutes of calls (`timing`), and at a call every few minutes the 4th call's does not. With
#: its keys too, the extra group evaluations drew a few more new users into campaigns on the
#: blind and simulated traffic.
LINK_REFRESH = frozenset((6, 12))
#: A harvest-like account's first event this long after its first one sends its keys once
#: more, if it makes single calls: its minute mask now spans most of an hour, enough for
#: lock-step timing, where its early evidence (calls 1-4 and 8, the first minutes of a
#: scheduler's bursts) was too short, and its next re-score may be hours away (an hour of
#: bursts, then a pause). People converse, even on a lesson's exercise: looked at again, a
#: class's card group passed candidate on a blind set.
MASK_LOOK_S = 50 * 60.0
#: Up to this many events, an answer of `HUGE_ANSWER` output tokens on a card sends link
#: evidence too (see below).
CARD_EARLY = 16
HUGE_ANSWER = 8000
#: Scores kept for `take_scores` between two calls (a driver that never asks keeps no more).
MAX_PENDING_SCORES = 10_000
#: A busy account is re-scored once its new events reach 1/2**RESCORE_SHIFT of its total (and
#: at least `rescore_every`): evidence that is already large moves slowly, and the hourly
#: re-score below still catches a change of behaviour.
RESCORE_SHIFT = 3
#: An account with some new activity is re-scored when this many hours have passed since its
#: last scoring (its day window and round-the-clock evidence move with time, not events).
RESCORE_HOURS = 2
#: An account's own evidence pages (critical) only once its activity has lasted this long:
#: an evaluation suite's run looks like an hour of harvesting, then stops; a harvest goes on.
SUSTAINED_S = 2 * 3600.0
#: Expire idle accounts every this many events (amortised; expiry is O(expired)).
EXPIRY_EVERY = 4096


@dataclass
class DetectorStats:
    """Plain counters the drivers turn into metrics and summaries."""

    events: int = 0
    duplicates: int = 0
    late: int = 0
    scored: int = 0
    expired: int = 0
    labels: int = 0
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)


class Detector:
    """Per-account state, scoring and alert policy over a stream of events; link evidence
    for the campaign stage."""

    def __init__(
        self, config: DetectorConfig | None = None, track_dirty: bool = True, link: bool = True
    ) -> None:
        """`track_dirty`: remember changed accounts for `take_dirty` (the worker's write-behind);
        `replay` turns it off, having nothing to write behind. `link`: emit link evidence into
        `evidence` (the driver must drain it, see `take_evidence`)."""
        self.config = config = config or DetectorConfig()
        self.stats = DetectorStats()
        self.model = OnlineModel(
            config.seed, config.label_model_weight, config.labels_for_full_weight
        )
        self.policy = policy_of(config)
        self._critical = config.threshold_critical
        self._dedupe = Deduplicator(config.dedupe_capacity, config.dedupe_horizon_s)
        self._lateness_s = config.allowed_lateness_s
        self._rescore_every = config.rescore_every
        self._store = AccountStore(config.idle_expiry_s, config.max_accounts)
        # Model name -> event time until which it counts as newly released (0: never).
        self._new_model_until: dict[str, float] = {}
        self._catalog_start: float | None = None
        self._dirty: set[str] = set()
        self._track_dirty = track_dirty
        self._scores: list[float] = []
        self._clock = float("-inf")
        self._since_expiry = 0
        self._link_on = link
        #: Link evidence for the campaign stage, in order, until the driver takes it.
        self.evidence: list[LinkEvidence] = []

    # --- the per-event path ----------------------------------------------------------------
    def process(self, event: Event) -> list[Alert]:
        """Fold one validated event in; return the alerts it triggers (usually none)."""
        return self.process_features(ff.derive(event))

    def process_features(self, f: ff.EventFeatures) -> list[Alert]:
        """The per-event path once the prompt and IP are reduced to features (`ff.derive`)."""
        # This runs for every event: locals over attribute chains, one read of each field.
        stats = self.stats
        ts = f.ts
        if self._dedupe.seen(f.event_digest, ts):
            stats.duplicates += 1
            return []
        if ts > self._clock:
            self._clock = ts
        account_id = f.account_id
        store = self._store
        state = store.get(account_id)
        if state is None:
            state = AccountState(ts)
            store.put(account_id, state)
        elif ts < state.last_ts - self._lateness_s:
            stats.late += 1
            return []
        else:
            store.touch(account_id, state)
        stats.events += 1
        flags = f.flags
        model = f.model
        if model is not None:
            until = self._new_model_until.get(model)
            if until is None:
                until = self._catalogue(model, ts)
            if ts < until:
                flags |= ff.NEW_MODEL
        before = state.last_ts
        state.apply(f, flags)
        if self._track_dirty:
            self._dirty.add(account_id)
        self._since_expiry += 1
        if self._since_expiry >= EXPIRY_EVERY:
            self._expire()
        # Re-score when the evidence has moved: by a fraction of itself, early in an account's
        # life, and every couple of hours for an account with some new activity.
        n = state.n
        fresh = n - state.scored_n
        if (
            (fresh >= self._rescore_every and fresh << RESCORE_SHIFT >= n)
            or n == 4
            or n == 8
            or (fresh >= 4 and int(ts // HOUR) - state.scored_hour >= RESCORE_HOURS)
        ):
            return self._score(account_id, state, f)
        if not self._link_on:
            return []
        if (
            (
                n <= LINK_EARLY
                and (looks_harvest(state) or (f.payment is not None and may_join_by_card(state)))
            )
            or (
                # An account's first huge answer on a card: a reseller's account that started
                # with its customers' chat shows now what its card's group counts.
                n <= CARD_EARLY
                and f.output_tokens >= HUGE_ANSWER
                and state.out_tokens - f.output_tokens < HUGE_ANSWER  # its first
                and f.payment is not None
                and may_join_by_card(state)
            )
            or (
                # Its first event once its minute mask spans MASK_LOOK_S (see there).
                before - state.first_ts < MASK_LOOK_S <= ts - state.first_ts
                and looks_harvest(state)
                and state.flag_counts[I_MULTI_TURN] * 4 < n
            )
        ):
            self.evidence.append(
                LinkEvidence(account_id, ts, link_keys(f, state), AccountSnapshot.of(state))
            )
        elif n in LINK_REFRESH and looks_harvest(state):
            self.evidence.append(LinkEvidence(account_id, ts, [], AccountSnapshot.of(state)))
        elif (
            n <= 2
            and f.payment is not None
            and not state.has_org
            and (n == 1 or (state.created_ts is not None and ts - state.created_ts <= YOUNG_S))
        ):
            # The card of an account without an org, at its first call (and a young one's at
            # its second): a reseller's account, young or aged, that starts with its customers'
            # chat joins a campaign its card pays for without waiting for its first scoring.
            # The card only (~6 µs at the stage, which drops it unless a campaign pays with it
            # or the account counts in the card's group): its networks and templates are told
            # when it looks like harvesting or is scored.
            self.evidence.append(
                LinkEvidence(account_id, ts, [card_key(f.payment)], AccountSnapshot.of(state))
            )
        return []

    def _catalogue(self, model: str, ts: float) -> float:
        """Event time until which a model seen for the first time at `ts` counts as newly
        released: models present from the start are the existing catalogue (0: never new);
        one first seen well after the stream began is new for the window."""
        window = self.config.new_model_window_s
        if self._catalog_start is None:
            self._catalog_start = ts
        released_late = ts > self._catalog_start + window / 4
        until = self._new_model_until[model] = ts + window if released_late else 0.0
        return until

    def _score(self, account_id: str, state: AccountState, f: ff.EventFeatures) -> list[Alert]:
        """Re-assess one account (rules, models) and run the alert policy; then tell the
        campaign stage (the snapshot includes the policy memory just updated)."""
        now = f.ts
        self.stats.scored += 1
        state.scored_n = state.n
        state.scored_hour = int(now // HOUR)
        assessment = assess(state, now)
        extra = self.model.assess(assessment)
        score = sigmoid(assessment.logit + sum(t[2] for t in extra))
        if score >= self._critical and now - state.first_ts < SUSTAINED_S:
            score = self._critical - 1e-6  # an hour's burst may be an evaluation run: no page
        if len(self._scores) < MAX_PENDING_SCORES:
            self._scores.append(score)
        alert = self._account_alert(account_id, state, score, assessment.terms + extra, now)
        if self._link_on:
            self.evidence.append(
                LinkEvidence(account_id, now, link_keys(f, state), AccountSnapshot.of(state))
            )
        return [] if alert is None else [alert]

    def _account_alert(
        self, account_id: str, state: AccountState, score: float, terms: list[Term], now: float
    ) -> Alert | None:
        alert = self.policy.account_alert(
            state.policy,
            account_id,
            score,
            state.recent_rate(now),
            terms,
            now,
            state.first_ts,
            state.n,
        )
        if alert is not None:
            self.stats.alerts["account", alert.severity] += 1
        return alert

    def _expire(self) -> None:
        self._since_expiry = 0
        dropped = self._store.expire(self._clock)
        self.stats.expired += len(dropped)
        if self._track_dirty:
            self._dirty.update(dropped)

    # --- analyst feedback ------------------------------------------------------------------
    def apply_label(self, label: Label) -> None:
        """Learn from an analyst verdict; a benign one also suppresses the account's alerts."""
        self.stats.labels += 1
        state = self._store.get(label.account_id)
        if state is None:
            state = AccountState(label.ts)
            self._store.put(label.account_id, state)
        now = max(label.ts, state.last_ts)
        assessment = assess(state, now)
        if state.n:
            self.model.learn_label(assessment.vector, label.attack)
        if not label.attack:
            score = sigmoid(assessment.logit)
            self.policy.suppress(state.policy, score, state.recent_rate(now))
            if state.n and self._link_on:  # the stage's member alerts respect the label too
                self.evidence.append(
                    LinkEvidence(label.account_id, now, [], AccountSnapshot.of(state))
                )
        if self._track_dirty:
            self._dirty.add(label.account_id)

    # --- persistence hooks for the worker ----------------------------------------------------
    @property
    def accounts_tracked(self) -> int:
        return len(self._store)

    def take_scores(self) -> list[float]:
        """Account scores computed since the last call (for the score-distribution metric)."""
        scores, self._scores = self._scores, []
        return scores

    def take_evidence(self) -> list[LinkEvidence]:
        """Link evidence emitted since the last call, in order; clears it."""
        evidence, self.evidence = self.evidence, []
        return evidence

    def take_dirty(self) -> set[str]:
        """Accounts changed (or expired) since the last call; clears the set."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def export_account(self, account_id: str) -> bytes | None:
        """Snapshot of one account (None once it has expired: write a tombstone)."""
        state = self._store.get(account_id)
        return None if state is None else state.export()

    def import_account(self, account_id: str, data: bytes) -> None:
        """Restore one account from `export_account` output (changelog recovery)."""
        state = AccountState.restore(data)
        self._store.put(account_id, state)
        if state.last_ts > self._clock:
            self._clock = state.last_ts

    def export_model(self) -> bytes:
        """Checkpoint of what is shared across accounts: the online models and the model
        catalogue (pickle, versioned; load only your own)."""
        return pickle.dumps(
            {
                "version": SHARED_STATE_VERSION,
                "model": self.model.export(),
                "catalog": (self._catalog_start, self._new_model_until),
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    def import_model(self, data: bytes) -> None:
        """Restore a checkpoint written by `export_model`."""
        doc = pickle.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != SHARED_STATE_VERSION:
            raise ValueError("unknown shared-state checkpoint format")
        self.model.restore(doc["model"])
        self._catalog_start, self._new_model_until = doc["catalog"]
