"""The campaign stage: link evidence in, cluster and member alerts out, no I/O.

The account side (`stream_detector.detector.Detector`, one per Kafka partition on the worker)
emits `LinkEvidence` whenever it links or re-scores an account, and when a label changes an
account's alert policy: the account id, the event time, the account's link keys (ints) and an
`AccountSnapshot` of the few fields the linker reads. The stage registers the keys, groups and
scores accounts through the `CampaignLinker`, and decides the cluster alerts and the members'
own alerts. It reads nothing but the evidence (the latest snapshot of each account), so its
decisions depend only on the sequence of evidence it is given: `replay` hands evidence over
directly, in order (`Pipeline`); the Kafka worker sends it through an internal topic to one
stage instance (`stream_detector.worker.stage`). One partition and one worker therefore make
exactly the decisions of `replay`, and several partitions find campaigns across them.

Member alerts are ``kind: "account"`` alerts with the usual deterministic `alert_id`, decided
with the stage's own cool-down memory of each member (and the benign-label suppression carried
by the member's snapshot). When the account side and the stage decide the same account alert
(same severity, same cool-down bucket), the two have the same id: consumers de-duplicate on
`alert_id`, as they already must for redeliveries.

Memory: snapshots are kept only for accounts that could be drawn into a campaign (harvest-like
by their own traffic) and for campaign members, and expire like account state (idle for
`idle_expiry_s` of event time, or beyond `max_accounts`).
"""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from stream_detector.alerts import SEVERITIES, Alert, AlertPolicy, alert_id
from stream_detector.campaigns import (
    Campaign,
    CampaignLinker,
    apply_ordered,
    apply_updates,
    has_card,
    latest,
    low_median,
    ordered_changes,
)
from stream_detector.config import DetectorConfig
from stream_detector.scoring import Term, explain, logit, sigmoid
from stream_detector.snapshot import AccountSnapshot, card_counts, harvest_like

#: How far (log-odds) below the `low` threshold a key group may be and still join a candidate
#: campaign, to be judged with the groups it is linked to.
CANDIDATE_MARGIN = 3.5
#: Version of the stage checkpoint (`CampaignStage.export_state`; 6: snapshots carry the
#: count of answers at the max_tokens ceiling; 7: of answers at length, of calls on a small
#: budget and of calls at temperature 0).
STAGE_STATE_VERSION = 7
#: Expire idle snapshots every this many pieces of evidence (amortised; O(expired)).
EXPIRY_EVERY = 1024


@dataclass(slots=True)
class LinkEvidence:
    """What the account side tells the campaign stage about one account at event time `ts`:
    its current link keys (none when only its snapshot changed, after a label)."""

    account_id: str
    ts: float
    keys: list[int]
    snapshot: AccountSnapshot


@dataclass
class StageStats:
    evidence: int = 0
    expired: int = 0
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)


def policy_of(config: DetectorConfig) -> AlertPolicy:
    """The alert policy (thresholds, cool-down) both sides use."""
    return AlertPolicy(
        (
            config.threshold_low,
            config.threshold_medium,
            config.threshold_high,
            config.threshold_critical,
        ),
        config.cooldown_s,
    )


class CampaignStage:
    """Campaign linking and its alerts over a stream of `LinkEvidence`."""

    def __init__(self, config: DetectorConfig | None = None, track_changes: bool = True) -> None:
        """`track_changes`: remember what changed for `export_changes` (the worker's
        write-behind); without it (`replay`) the record is dropped as it goes."""
        self.config = config = config or DetectorConfig()
        self._track_changes = track_changes
        self.policy = policy_of(config)
        self.stats = StageStats()
        # Latest snapshot of each account that matters (harvest-like or a member), in order of
        # last evidence: the front is the longest idle.
        self._snapshots: dict[str, AccountSnapshot] = {}
        # The stage's own alert-policy memory of the members it alerted.
        self._member_policy: dict[str, list[Any]] = {}
        low = logit(config.threshold_low)
        self.linker = CampaignLinker(self._snapshots.get, low, low - CANDIDATE_MARGIN)
        #: Member alerts never page on their own: the cluster alert does.
        self._member_cap = config.threshold_critical - 1e-6
        self._clock = float("-inf")
        self._since_expiry = 0
        # Accounts whose snapshot or member-policy memory changed since the last export.
        self._dirty_snapshots: set[str] = set()
        self._dirty_policy: set[str] = set()

    @property
    def campaigns_tracked(self) -> int:
        return len(self.linker.campaigns)

    def observe(self, evidence: LinkEvidence) -> list[Alert]:
        """Take one piece of evidence; return the alerts it triggers (usually none)."""
        self.stats.evidence += 1
        account_id = evidence.account_id
        now = evidence.ts
        if now > self._clock:
            self._clock = now
        snap = evidence.snapshot
        snapshots = self._snapshots
        replaced = snapshots.pop(account_id, None) is not None
        linker = self.linker
        keys = evidence.keys
        keep = (
            harvest_like(snap, now)
            or account_id in linker.campaign_of
            or (not snap.has_org and linker.joins_by_card(keys))
            or (has_card(keys) and card_counts(snap, now))
        )
        if keep:
            snapshots[account_id] = snap
        if keep or replaced:
            self._dirty_snapshots.add(account_id)
        elif len(keys) == 1 and has_card(keys):
            # Its card alone, from an account that neither counts in the card's group nor can
            # be drawn in by it (no campaign pays with it): nothing for the linker. Holders
            # that would only thin out the group's share of harvesters are left out of it, and
            # the card of every newcomer costs no memory.
            keys = []
        self._since_expiry += 1
        if self._since_expiry >= EXPIRY_EVERY:
            self._expire()
        if not keys:
            return []
        alerts: list[Alert] = []
        for campaign in self.linker.observe(account_id, keys, now):
            alerts.extend(self._campaign_alerts(campaign, now))
        return alerts

    def _expire(self) -> None:
        self._since_expiry = 0
        if not self._track_changes:
            self._dirty_snapshots.clear()
            self._dirty_policy.clear()
            self.linker.discard_changes()
        snapshots = self._snapshots
        horizon = self._clock - self.config.idle_expiry_s
        cap = self.config.max_accounts
        dropped: list[str] = []
        for account_id, snap in snapshots.items():
            if snap.last_ts >= horizon and len(snapshots) - len(dropped) <= cap:
                break
            dropped.append(account_id)
        for account_id in dropped:
            del snapshots[account_id]
            self._member_policy.pop(account_id, None)
        self._dirty_snapshots.update(dropped)
        self._dirty_policy.update(dropped)
        self.stats.expired += len(dropped)
        self.linker.expire(horizon, cap)

    # --- alerts ------------------------------------------------------------------------------
    @staticmethod
    def _member_terms(campaign: Campaign) -> list[Term]:
        size = float(len(campaign.members))
        return [("campaign_member", size, 10.0), *campaign.terms]

    def _campaign_alerts(self, campaign: Campaign, now: float) -> list[Alert]:
        """The cluster alert, and the members' own alerts once the campaign is high.

        Members are alerted once per campaign level: all of them when the level rises, and
        afterwards only those who joined since, so a large campaign costs O(new members).
        """
        score = sigmoid(campaign.logit)
        total = len(campaign.members)
        alerts: list[Alert] = []
        lookup = self._snapshots.get
        sample = [s for s in map(lookup, latest(campaign.members)) if s is not None]
        if (
            score >= self.config.threshold_critical
            and (low_median([s.out_tokens for s in sample]) * total if sample else 0.0)
            < self.config.page_output_tokens
        ):
            # A page wants a harvest of consequence: the output tokens its members took, as
            # many times its typical (latest) member's (a batch job or two among a class are
            # not what the class took). A class or an office on one card with reasoning
            # exercises adds up to a few hundred thousand, a distillation campaign to many
            # millions. Until then it is high, named but not paged.
            score = self._member_cap
        severity = self.policy.decide(
            campaign.policy, "cluster", campaign.campaign_id, score, float(total), now
        )
        if severity is not None:
            self.stats.alerts["cluster", severity] += 1
            alerts.append(
                Alert(
                    alert_id=alert_id(
                        "cluster", campaign.campaign_id, severity, self.policy.bucket(now)
                    ),
                    kind="cluster",
                    subject=campaign.campaign_id,
                    accounts=list(islice(campaign.members, self.config.max_alert_accounts)),
                    accounts_total=total,
                    severity=severity,
                    score=score,
                    reasons=explain(campaign.terms),
                    event_ts=now,
                    first_seen_ts=min((s.first_ts for s in sample), default=now),
                    events=sum(s.n for s in sample),
                )
            )
        level = self.policy.level(score)
        if level < SEVERITIES.index("high") + 1:
            return alerts
        start = 0 if level > campaign.member_level else campaign.members_alerted
        campaign.member_level = max(level, campaign.member_level)
        campaign.members_alerted = total
        member_score = min(score, self._member_cap)
        terms = self._member_terms(campaign)
        reasons = explain(terms)  # the same for every member alerted now
        # The members who joined since (O(new members), not O(members): `islice` from the front
        # would walk the whole campaign every time).
        joined = list(islice(reversed(campaign.members), total - start))
        joined.reverse()
        for member in joined:
            snap = lookup(member)
            if snap is not None:
                alert = self._member_alert(member, snap, member_score, terms, reasons, now)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _member_alert(
        self,
        account_id: str,
        snap: AccountSnapshot,
        score: float,
        terms: list[Term],
        reasons: list[dict[str, object]],
        now: float,
    ) -> Alert | None:
        rate = snap.recent_rate(now)
        self._dirty_policy.add(account_id)
        memory = self._member_policy.get(account_id)
        if memory is None:
            # A benign label on the account side suppresses member alerts too, until the
            # behaviour changes materially (the policy's usual test, on the member score).
            memory = self._member_policy[account_id] = list(snap.policy)
        elif snap.policy and snap.policy[2] and not memory[2]:
            memory[2:] = snap.policy[2:]  # labelled benign since the stage last alerted
        alert = self.policy.account_alert(
            memory, account_id, score, rate, terms, now, snap.first_ts, snap.n, reasons
        )
        if alert is not None:
            self.stats.alerts["account", alert.severity] += 1
        return alert

    # --- checkpoint --------------------------------------------------------------------------
    def export_state(self) -> bytes:
        """Checkpoint of the whole stage (pickle, versioned; load only your own). Changes
        tracked for `export_changes` start over from here."""
        self._dirty_snapshots = set()
        self._dirty_policy = set()
        snapshots = [(a, s.encode()) for a, s in self._snapshots.items()]
        return self._pack(snapshots, self._member_policy, self.linker.export_state())

    def import_state(self, data: bytes) -> None:
        """Restore a checkpoint written by `export_state`."""
        doc = self._unpack(data)
        self._snapshots.clear()
        decode = AccountSnapshot.decode
        self._snapshots.update((a, decode(s)) for a, s in doc["snapshots"])
        self._member_policy = doc["member_policy"]
        self.linker.import_state(doc["linker"])
        self._clock = doc["clock"]
        self._since_expiry = doc["since_expiry"]
        self._dirty_snapshots = set()
        self._dirty_policy = set()

    def export_changes(self) -> bytes | None:
        """What changed since the last `export_state` or `export_changes` (pickle,
        versioned): O(changes), where a full export is O(state). None when the changes cannot
        be expressed incrementally: take a full export then."""
        linker = self.linker.export_changes()
        snapshots = ordered_changes(self._snapshots, self._dirty_snapshots)
        policy = {a: self._member_policy.get(a) for a in self._dirty_policy}
        self._dirty_snapshots = set()
        self._dirty_policy = set()
        if linker is None or snapshots is None:
            return None
        encoded = [(a, None if s is None else s.encode()) for a, s in snapshots]
        return self._pack(encoded, policy, linker)

    def apply_changes(self, data: bytes) -> None:
        """Apply `export_changes` output on top of the state it was taken from."""
        doc = self._unpack(data)
        decode = AccountSnapshot.decode
        apply_ordered(
            self._snapshots,
            [(a, None if s is None else decode(s)) for a, s in doc["snapshots"]],
        )
        apply_updates(self._member_policy, doc["member_policy"])
        self.linker.apply_changes(doc["linker"])
        self._clock = doc["clock"]
        self._since_expiry = doc["since_expiry"]

    def _pack(self, snapshots: list[Any], policy: dict[str, Any], linker: dict[str, Any]) -> bytes:
        """A versioned export (full or changes): pickle, load only your own."""
        return pickle.dumps(
            {
                "version": STAGE_STATE_VERSION,
                "snapshots": snapshots,
                "member_policy": policy,
                "linker": linker,
                "clock": self._clock,
                "since_expiry": self._since_expiry,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @staticmethod
    def _unpack(data: bytes) -> dict[str, Any]:
        doc = pickle.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != STAGE_STATE_VERSION:
            raise ValueError("unknown campaign-stage checkpoint format")
        return doc
