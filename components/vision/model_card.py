"""The model card of a trained classifier version: what it is for, what it was trained on,
how good and how sure it is, what it cannot do, and why it is (or is not) serving.

Pure data -> Markdown: the registry gathers the facts from the version's run
(:mod:`registry.cards`) and publishes the card as the run's ``model_card.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from components.emotions import EMOTIONS
from components.vision.calibration import CalibrationReport
from components.vision.evaluate import EvaluationReport
from components.vision.quantization import Int8Report

INTENDED_USE = (
    "Estimating the facial expression (one of FER-2013's 7 classes) of a face in a photo a "
    "person chose to upload, to retrieve and summarise the customer reviews that explain "
    "that emotion. An aggregate, exploratory signal about products, read by people."
)
OUT_OF_SCOPE = (
    "decisions about individuals (eligibility, pricing, moderation, discipline)",
    "surveillance, identification or tracking of people",
    "hiring, admission or any assessment of a person",
    "health, mental-health or lie/deception assessments",
)
KNOWN_LIMITS = (
    "Input is a 48x48 grayscale face crop: colour, context, body language and speech are "
    "never seen; small, turned, occluded or badly lit faces are unreliable.",
    "FER-2013's labels are noisy (human agreement on them is about 65 %) and its faces are "
    "demographically imbalanced (web images, mostly adults, skewed in age and skin tone).",
    "The data holds no demographic labels, so per-group metrics cannot be computed and no "
    "fairness across groups is claimed.",
    "An expression is not a feeling: the model labels what a face shows, not what a person feels.",
)


class TrainingData(BaseModel):
    dataset: str
    synthetic: bool
    per_class: dict[str, dict[str, int]] = Field(description="split -> emotion -> images")
    data_sha256: str
    test_set_sha256: str
    validation_passed: bool
    validation_detail: str
    feedback_rows: int = 0
    feedback_sha256: str = ""
    feedback_dropped: int = 0


class GateRecord(BaseModel):
    decision: str
    reason: str
    challenger_macro_f1: float | None = None
    champion_version: str | None = None
    champion_macro_f1: float | None = None
    margin: float | None = None


class ModelCard(BaseModel):
    model_name: str
    version: str
    architecture: str
    weights_sha256: str
    created: str
    run_id: str
    git_commit: str
    data: TrainingData
    evaluation: EvaluationReport
    calibration: CalibrationReport | None
    gate: GateRecord
    int8: Int8Report | None = None  # trained with ``vision.inference: int8``
    intended_use: str = INTENDED_USE
    out_of_scope: list[str] = Field(default_factory=lambda: list(OUT_OF_SCOPE))
    known_limits: list[str] = Field(default_factory=lambda: list(KNOWN_LIMITS))

    def headline(self) -> str:
        e = self.evaluation
        return (
            f"{self.model_name} v{self.version}: test accuracy {e.accuracy:.3f}, macro-F1 "
            f"{e.macro_f1:.3f} on {e.count} {self.data.dataset} faces; {self.gate.decision}"
        )


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def render_model_card(card: ModelCard) -> str:
    """The card as Markdown, in the order a reader asks: what, for what, on what, how well."""
    e, data, gate = card.evaluation, card.data, card.gate
    synthetic = (
        "**yes: synthetic faces drawn by emoreview; these numbers say nothing about real faces**"
        if data.synthetic
        else "no"
    )
    feedback = f"- user feedback corrections in train: {data.feedback_rows}"
    if data.feedback_rows:
        feedback += f" (sha256 `{data.feedback_sha256[:16]}`)"
    if data.feedback_dropped:
        feedback += f"; {data.feedback_dropped} dropped as test duplicates"
    lines = [
        f"# Model card: {card.model_name} version {card.version}",
        "",
        f"{card.architecture} classifier, weights sha256 `{card.weights_sha256}`, registered "
        f"{card.created} from MLflow run `{card.run_id}` (git `{card.git_commit or 'unknown'}`).",
        "",
        "## Intended use",
        card.intended_use,
        "",
        "**It must not be used for:**",
        *[f"- {use}" for use in card.out_of_scope],
        "",
        "## Training data",
        f"- dataset: {data.dataset}; synthetic: {synthetic}",
        f"- data sha256 `{data.data_sha256}`; test set sha256 `{data.test_set_sha256}`",
        f"- validation (Great Expectations image suite): "
        f"{'passed' if data.validation_passed else 'FAILED'} ({data.validation_detail})",
        feedback,
        "",
        "| split | " + " | ".join(EMOTIONS) + " | total |",
        "| --- |" + " ---: |" * (len(EMOTIONS) + 1),
    ]
    for split, counts in data.per_class.items():
        row = [str(counts.get(name, 0)) for name in EMOTIONS]
        lines.append(f"| {split} | " + " | ".join(row) + f" | {sum(counts.values())} |")
    lines += [
        "",
        f"## Evaluation ({e.dataset} {e.split}, {e.count} faces, TTA {e.tta})",
        f"- accuracy **{e.accuracy:.4f}**, macro-F1 **{e.macro_f1:.4f}**, weighted-F1 "
        f"{e.weighted_f1:.4f}",
    ]
    if card.calibration is not None:
        c = card.calibration
        lines.append(
            f"- calibration: temperature {c.temperature:.4f} fitted on {c.fitted_count} "
            f"{c.fitted_on} faces (NLL {c.nll_before:.4f} -> {c.nll_after:.4f}); expected "
            f"calibration error ({c.bins} bins, {c.evaluated_on}) {c.ece_before:.4f} before, "
            f"**{c.ece_after:.4f} after**. Served probabilities are the calibrated ones."
        )
    if card.int8 is not None:
        lines.append(f"- served as `vision.inference: int8`: {card.int8.summary()}")
    lines += [
        "",
        "| emotion | support | accuracy | 95 % Wilson interval | precision | F1 |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for name in EMOTIONS:
        m = e.per_class[name]
        low, high = m.accuracy_ci95
        lines.append(
            f"| {name} | {m.support} | {m.accuracy:.3f} | [{low:.3f}, {high:.3f}] | "
            f"{m.precision:.3f} | {m.f1:.3f} |"
        )
    lines += [
        "",
        "Confusion matrix (rows: true, columns: predicted):",
        "",
        "| true \\ predicted | " + " | ".join(EMOTIONS) + " |",
        "| --- |" + " ---: |" * len(EMOTIONS),
        *[
            f"| {name} | " + " | ".join(str(v) for v in row) + " |"
            for name, row in zip(EMOTIONS, e.confusion_matrix, strict=True)
        ],
        "",
        "## Known limits",
        *[f"- {limit}" for limit in card.known_limits],
        "",
        "## Promotion gate",
        f"- decision: **{gate.decision}**: {gate.reason}",
        f"- this version's test macro-F1 {_score(gate.challenger_macro_f1)}; champion compared "
        f"with: {('v' + gate.champion_version) if gate.champion_version else 'none'} "
        f"({_score(gate.champion_macro_f1)}); margin {_score(gate.margin)}",
        "",
    ]
    return "\n".join(lines)


def card_json(card: ModelCard) -> dict[str, Any]:
    return card.model_dump(mode="json")
