"""The online River models next to the scorecard.

* An anomaly detector (HalfSpaceTrees) learns what account feature vectors usually look like
  and adds a small, bounded term when an account is unusual *and* already suspicious.
* A logistic regression learns from analyst labels (`extraction-labels`): its weight grows with
  the number of labels seen, so a handful of labels cannot swing decisions.

Both are called only when an account is re-scored (every few events), never per event. The
pair is checkpointed with pickle (River's own persistence); load only checkpoints you wrote.
"""

from __future__ import annotations

import pickle
from typing import Any

from stream_detector.scoring import Assessment, Term

#: Checkpoint format version.
MODEL_VERSION = 1
#: The trees learn from one scored vector in this many: a sample of the population suffices.
LEARN_EVERY = 16
#: Below this rule log-odds the model terms are not computed: together (anomaly <= 0.8,
#: label classifier <= 1.5) they could not lift the score to the lowest severity (log-odds 0).
MODEL_FLOOR = -2.5


class OnlineModel:
    """Anomaly detector plus label-trained classifier over `scoring.VECTOR_FIELDS` vectors."""

    def __init__(self, seed: int, label_weight: float, labels_for_full_weight: int) -> None:
        # River pulls in scipy (~2 s): imported here so `--help` and parsing stay instant.
        from river import anomaly, linear_model, optim, preprocessing

        self.anomaly = anomaly.HalfSpaceTrees(n_trees=10, height=6, window_size=250, seed=seed)
        self.classifier = preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optimizer=optim.SGD(0.05)
        )
        self.labels_seen = 0
        self._calls = 0
        self.label_weight = label_weight
        self.labels_for_full_weight = labels_for_full_weight

    def assess(self, assessment: Assessment) -> list[Term]:
        """Model terms for one scored account; the trees learn a sample as they go."""
        terms: list[Term] = []
        self._calls += 1
        if self._calls % LEARN_EVERY == 0:
            self.anomaly.learn_one(assessment.vector)
        if assessment.logit <= MODEL_FLOOR:
            return terms  # the models' terms could not lift it to an alert: skip them
        vector = assessment.vector
        unusual = self.anomaly.score_one(vector)
        if unusual > 0.6:
            terms.append(("anomaly", unusual, min(2.0 * (unusual - 0.6), 0.8)))
        if self.labels_seen:
            p = self.classifier.predict_proba_one(vector).get(True, 0.5)
            trust = min(1.0, self.labels_seen / self.labels_for_full_weight)
            weight = self.label_weight * trust * (2.0 * p - 1.0)
            if abs(weight) >= 0.05:
                terms.append(("analyst_feedback", p, weight))
        return terms

    def learn_label(self, vector: dict[str, float], attack: bool) -> None:
        """One analyst label: the classifier takes a step toward it."""
        self.classifier.learn_one(vector, attack)
        self.labels_seen += 1

    def export(self) -> bytes:
        """Checkpoint of both models (pickle, versioned)."""
        state: dict[str, Any] = {
            "version": MODEL_VERSION,
            "anomaly": self.anomaly,
            "classifier": self.classifier,
            "labels_seen": self.labels_seen,
            "calls": self._calls,  # the trees' learning schedule: part of exact resumption
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, data: bytes) -> None:
        """Load a checkpoint written by `export` (trusted input only)."""
        state = pickle.loads(data)
        if not isinstance(state, dict) or state.get("version") != MODEL_VERSION:
            raise ValueError("unknown model checkpoint format")
        self.anomaly = state["anomaly"]
        self.classifier = state["classifier"]
        self.labels_seen = int(state["labels_seen"])
        self._calls = int(state["calls"])
