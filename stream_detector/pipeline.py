"""The account side and the campaign stage in one process: what `replay`, the tests and the
benchmarks run. Evidence is handed from the `Detector` to the `CampaignStage` directly, in the
order it is emitted, so the stage sees exactly the sequence a one-partition worker sends
through its evidence topic (and decides the same)."""

from __future__ import annotations

from collections import Counter

from stream_detector import features as ff
from stream_detector.alerts import Alert
from stream_detector.config import DetectorConfig
from stream_detector.detector import Detector
from stream_detector.events import Event
from stream_detector.labels import Label
from stream_detector.stage import CampaignStage


class Pipeline:
    """A `Detector` feeding a `CampaignStage`."""

    def __init__(self, config: DetectorConfig | None = None, track_dirty: bool = False) -> None:
        self.detector = Detector(config, track_dirty=track_dirty)
        self.stage = CampaignStage(self.detector.config, track_changes=track_dirty)

    def process(self, event: Event) -> list[Alert]:
        """Account alerts of the event, then the stage's alerts on the evidence it gave."""
        return self.process_features(ff.derive(event))

    def process_features(self, f: ff.EventFeatures) -> list[Alert]:
        detector = self.detector
        alerts = detector.process_features(f)
        if detector.evidence:
            observe = self.stage.observe
            for evidence in detector.take_evidence():
                found = observe(evidence)
                if found:
                    alerts = alerts + found
        return alerts

    def apply_label(self, label: Label) -> None:
        detector = self.detector
        detector.apply_label(label)
        for evidence in detector.take_evidence():
            self.stage.observe(evidence)  # keyless: updates a snapshot, decides nothing

    @property
    def alerts(self) -> Counter[tuple[str, str]]:
        """Alerts decided so far by kind and severity (both sides)."""
        return self.detector.stats.alerts + self.stage.stats.alerts
