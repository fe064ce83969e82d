"""The promotion gate: when a challenger may become champion. Pure: no MLflow here."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ChampionScore:
    version: str
    macro_f1: float


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    challenger_macro_f1: float
    champion: ChampionScore | None
    margin: float

    def as_tags(self) -> dict[str, str]:
        tags = {
            "promotion_decision": "promoted" if self.promoted else "rejected",
            "promotion_reason": self.reason,
            "promotion_margin": f"{self.margin:.4f}",
            "compared_challenger_macro_f1": f"{self.challenger_macro_f1:.6f}",
        }
        if self.champion is not None:
            tags["compared_champion_version"] = self.champion.version
            tags["compared_champion_macro_f1"] = f"{self.champion.macro_f1:.6f}"
        return tags

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def decide_promotion(
    validation_passed: bool,
    challenger_macro_f1: float,
    champion: ChampionScore | None,
    margin: float,
) -> PromotionDecision:
    """Champion only with validated data and macro-F1 >= champion's + ``margin`` (both
    measured on the same test set); the first validated model is promoted."""
    if not validation_passed:
        return PromotionDecision(
            False,
            "its training data failed validation: a model trained on invalid data is never "
            "champion",
            challenger_macro_f1,
            champion,
            margin,
        )
    if champion is None:
        return PromotionDecision(
            True,
            "first validated model: no champion to compare with",
            challenger_macro_f1,
            None,
            margin,
        )
    required = champion.macro_f1 + margin
    if challenger_macro_f1 >= required:
        return PromotionDecision(
            True,
            f"test macro-F1 {challenger_macro_f1:.4f} >= champion v{champion.version} "
            f"{champion.macro_f1:.4f} + margin {margin:.4f}",
            challenger_macro_f1,
            champion,
            margin,
        )
    return PromotionDecision(
        False,
        f"test macro-F1 {challenger_macro_f1:.4f} < champion v{champion.version} "
        f"{champion.macro_f1:.4f} + margin {margin:.4f}",
        challenger_macro_f1,
        champion,
        margin,
    )
