"""Promotion: a registered challenger against the champion, on the challenger's test set.

The rules themselves are pure (:mod:`registry.gate`); this module gathers their inputs from
the registry (re-evaluating the champion when it was tested on another test set) and records
the decision on the version.
"""

from __future__ import annotations

import logging
from pathlib import Path

from components.settings import Settings
from components.vision.evaluate import compute_metrics, predict_probabilities
from components.vision.model import load_weights
from components.vision.training_run import load_test_set
from registry.gate import ChampionScore, PromotionDecision, decide_promotion
from registry.models import ModelRegistry, RegistryError, VersionRecord

log = logging.getLogger(__name__)


def is_synthetic(record: VersionRecord) -> bool:
    """Whether a version was trained on synthetic faces (older versions: by dataset name)."""
    return record.tags.get("synthetic", "") == "true" or record.tags.get("dataset") == "synthetic"


def apply_gate(
    registry: ModelRegistry, version: str, data: Path, settings: Settings
) -> PromotionDecision:
    """Compare a registered challenger with the champion on the challenger's test set and
    record the decision (and that test set's sha256) on the version."""
    challenger = registry.record(version)
    champion = registry.champion_version()
    if "promotion_decision" in challenger.tags:
        # Decided before (e.g. a flow rerun whose training was cached): keep that decision.
        return PromotionDecision(
            promoted=champion == version,
            reason=f"already decided: {challenger.tags.get('promotion_reason', '')}",
            challenger_macro_f1=float(challenger.tags["test_macro_f1"]),
            champion=None,
            margin=settings.registry.promotion_margin,
        )
    test_set_sha256 = challenger.tags["test_set_sha256"]
    synthetic = is_synthetic(challenger)
    score = None
    if champion is not None and champion != version:
        champion_record = registry.record(champion)
        if synthetic and not is_synthetic(champion_record):
            score = ChampionScore(champion, float("nan"), synthetic=False)  # refused unmeasured
        else:
            score = champion_score(registry, champion_record, test_set_sha256, data, settings)
    decision = decide_promotion(
        challenger.validation_passed,
        float(challenger.tags["test_macro_f1"]),
        score,
        settings.registry.promotion_margin,
        challenger_synthetic=synthetic,
        test_set_sha256=test_set_sha256,
    )
    if decision.promoted:
        registry.make_champion(version, decision.as_tags())
    else:
        registry.record_decision(version, decision.as_tags())
    log.info("gate for %s v%s: %s", registry.name, version, decision.reason)
    return decision


def champion_score(
    registry: ModelRegistry,
    champion: VersionRecord,
    test_set_sha256: str,
    data: Path,
    settings: Settings,
) -> ChampionScore:
    """The champion's test macro-F1 on exactly the challenger's test set (same rows, labels
    and FER+ votes, proven by its sha256): the recorded number when the champion was tested
    on it, otherwise a fresh evaluation."""
    synthetic = is_synthetic(champion)
    if champion.tags.get("test_set_sha256") == test_set_sha256:
        return ChampionScore(champion.version, float(champion.tags["test_macro_f1"]), synthetic)
    log.info(
        "champion v%s was tested on another test set: evaluating it on this one", champion.version
    )
    test, digest = load_test_set(data, settings)
    if digest != test_set_sha256:
        raise RegistryError(
            f"the test set in {data} (sha256 {digest[:12]}) is not the one the challenger was "
            f"tested on ({test_set_sha256[:12]}): the data or settings.train.ferplus_votes "
            "changed since training, so the champion cannot be compared; train again"
        )
    source = registry.fetch(champion.version, settings.paths.models_dir)
    probabilities = predict_probabilities(
        load_weights(source.weights), test.images, batch_size=256, tta=settings.vision.tta
    )
    report = compute_metrics(test.labels, probabilities, "challenger test set", "test")
    return ChampionScore(champion.version, report.macro_f1, synthetic)
