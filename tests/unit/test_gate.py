"""The promotion gate's decisions (pure logic; the registry tests run it against MLflow)."""

from __future__ import annotations

from registry.gate import ChampionScore, decide_promotion


def test_first_validated_model_is_promoted() -> None:
    decision = decide_promotion(True, 0.41, None, margin=0.01)
    assert decision.promoted and "first validated model" in decision.reason
    assert decision.as_tags()["promotion_decision"] == "promoted"


def test_failed_validation_is_never_promoted_even_when_better() -> None:
    decision = decide_promotion(False, 0.99, ChampionScore("1", 0.10), margin=0.0)
    assert not decision.promoted and "failed validation" in decision.reason
    assert not decide_promotion(False, 0.99, None, margin=0.0).promoted


def test_challenger_must_beat_champion_by_the_margin() -> None:
    champion = ChampionScore("3", 0.70)
    assert decide_promotion(True, 0.72, champion, margin=0.02).promoted
    rejected = decide_promotion(True, 0.719, champion, margin=0.02)
    assert not rejected.promoted
    tags = rejected.as_tags()
    assert tags["promotion_decision"] == "rejected"
    assert tags["compared_champion_version"] == "3"
    assert tags["compared_champion_macro_f1"] == "0.700000"
    assert "0.7190 < champion v3 0.7000 + margin 0.0200" in tags["promotion_reason"]


def test_a_synthetic_model_never_replaces_a_real_champion() -> None:
    real = ChampionScore("4", float("nan"), synthetic=False)
    refused = decide_promotion(True, 0.99, real, margin=0.0, challenger_synthetic=True)
    assert not refused.promoted and "synthetic" in refused.reason and "v4" in refused.reason
    tags = refused.as_tags()
    assert tags["promotion_decision"] == "rejected" and "compared_champion_macro_f1" not in tags
    # Synthetic over synthetic (the demo) and real over synthetic follow the scores.
    assert decide_promotion(
        True, 0.9, ChampionScore("1", 0.5, synthetic=True), 0.0, challenger_synthetic=True
    ).promoted
    assert decide_promotion(True, 0.9, ChampionScore("1", 0.5, synthetic=True), 0.0).promoted
    assert decide_promotion(True, 0.9, None, 0.0, challenger_synthetic=True).promoted


def test_the_decision_records_the_test_set_it_compared_on() -> None:
    decision = decide_promotion(True, 0.8, ChampionScore("2", 0.7), 0.0, test_set_sha256="ab" * 32)
    assert decision.as_tags()["compared_test_set_sha256"] == "ab" * 32
