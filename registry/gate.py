"""The promotion gate: when a challenger may become champion. Pure: no MLflow here.

Rules, in order: a model trained on data that failed validation is never champion; a
model trained on synthetic faces never replaces a champion trained on real data; the first
model is champion; otherwise the challenger must match the champion's macro-F1 plus the
margin, both measured on the challenger's test set (its sha256 is recorded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ChampionScore:
    version: str
    macro_f1: float  # on the challenger's test set; NaN when it was not measured
    synthetic: bool = False  # the champion was trained on synthetic faces


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    challenger_macro_f1: float
    champion: ChampionScore | None
    margin: float
    test_set_sha256: str = ""

    def as_tags(self) -> dict[str, str]:
        tags = {
            "promotion_decision": "promoted" if self.promoted else "rejected",
            "promotion_reason": self.reason,
            "promotion_margin": f"{self.margin:.4f}",
            "compared_challenger_macro_f1": f"{self.challenger_macro_f1:.6f}",
        }
        if self.test_set_sha256:
            tags["compared_test_set_sha256"] = self.test_set_sha256
        if self.champion is not None:
            tags["compared_champion_version"] = self.champion.version
            if not math.isnan(self.champion.macro_f1):
                tags["compared_champion_macro_f1"] = f"{self.champion.macro_f1:.6f}"
        return tags


def decide_promotion(
    validation_passed: bool,
    challenger_macro_f1: float,
    champion: ChampionScore | None,
    margin: float,
    challenger_synthetic: bool = False,
    test_set_sha256: str = "",
) -> PromotionDecision:
    """Champion only with validated data, never synthetic over real, and macro-F1 >=
    champion's + ``margin`` (both measured on the same test set); the first validated model
    is promoted."""

    def decision(promoted: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promoted, reason, challenger_macro_f1, champion, margin, test_set_sha256
        )

    if not validation_passed:
        return decision(
            False,
            "its training data failed validation: a model trained on invalid data is never "
            "champion",
        )
    if champion is not None and challenger_synthetic and not champion.synthetic:
        return decision(
            False,
            f"it was trained on synthetic faces and champion v{champion.version} on real data: "
            "a synthetic model never replaces a real one",
        )
    if champion is None:
        return decision(True, "first validated model: no champion to compare with")
    required = champion.macro_f1 + margin
    comparison = (
        f"test macro-F1 {challenger_macro_f1:.4f} {{}} champion v{champion.version} "
        f"{champion.macro_f1:.4f} + margin {margin:.4f}"
    )
    if challenger_macro_f1 >= required:
        return decision(True, comparison.format(">="))
    return decision(False, comparison.format("<"))
