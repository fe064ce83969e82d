"""Models with the real architectures, randomly initialised and saved like hub checkpoints,
for the tests and the benchmarks (which reuse them); and registering one as champion.

Cost depends on architecture, not on weight values, so when the real weights are absent
(no downloads here) the benchmarks measure: a T5 built from google/flan-t5-base's
configuration, a RoBERTa-base sequence classifier (the cardiffnlp sentiment model's
architecture) and ResNet-50 with 7 classes; the embedder is the real all-MiniLM-L6-v2.
``size="tiny"`` builds toy versions of the same classes for tests and smoke runs. The
tokenizer is all-MiniLM-L6-v2's (shipped offline).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from components.settings import Settings

Size = Literal["base", "tiny"]
SENTIMENT_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
# j-hartmann/emotion-english-distilroberta-base's labels, in its order.
EMOTION_MODEL_LABELS = {
    0: "anger", 1: "disgust", 2: "fear", 3: "joy", 4: "neutral", 5: "sadness", 6: "surprise",
}  # fmt: skip
# google/flan-t5-base's config.json (the architecture fields).
FLAN_T5_BASE = {
    "d_model": 768, "d_ff": 2048, "d_kv": 64, "num_layers": 12, "num_decoder_layers": 12,
    "num_heads": 12, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
}  # fmt: skip
FLAN_T5_TINY = {
    "d_model": 32, "d_ff": 64, "d_kv": 16, "num_layers": 2, "num_decoder_layers": 2,
    "num_heads": 2, "feed_forward_proj": "gated-gelu",
}  # fmt: skip
# roberta-base (twitter-roberta-base-sentiment-latest's architecture).
ROBERTA_BASE = {
    "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "max_position_embeddings": 514, "type_vocab_size": 1,
}  # fmt: skip
ROBERTA_TINY = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 2, "max_position_embeddings": 256,
}  # fmt: skip


def _tokenizer():
    from transformers import AutoTokenizer

    from components.index.embedder import packaged_minilm_path

    return AutoTokenizer.from_pretrained(str(packaged_minilm_path()))


def save_t5(folder: Path, size: Size = "tiny", seed: int = 0) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    if (folder / "config.json").is_file():
        return folder
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        **(FLAN_T5_BASE if size == "base" else FLAN_T5_TINY),
    )
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_roberta_classifier(
    folder: Path, labels: dict[int, str], size: Size = "tiny", seed: int = 0
) -> Path:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    if (folder / "config.json").is_file():
        return folder
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        **(ROBERTA_BASE if size == "base" else ROBERTA_TINY),
    )
    model = RobertaForSequenceClassification(config)
    # Random heads give near-uniform outputs; scale them so labels differ between texts.
    with torch.no_grad():
        for parameter in model.classifier.parameters():
            parameter.mul_(40.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_classifier(path: Path, seed: int = 0, temperature: float = 1.0) -> Path:
    """Random EmotionResNet weights, saved as training saves them (with a calibration
    temperature when it is not 1)."""
    import torch

    from components.vision.model import EmotionResNet, TemperatureScaled, save_weights

    if not path.is_file():
        torch.manual_seed(seed)
        model = EmotionResNet()
        save_weights(model if temperature == 1.0 else TemperatureScaled(model, temperature), path)
    return path


def register_champion(settings: Settings, weights: Path, seed_note: str = "benchmark") -> str:
    """Register ``weights`` as a new version of the classifier and make it champion."""
    import mlflow

    from registry.models import open_registry
    from registry.tracking import ensure_experiment

    registry = open_registry(settings)
    experiment = ensure_experiment(registry.client, settings, settings.registry.experiment)
    with mlflow.start_run(experiment_id=experiment):
        version = registry.log_and_register(
            weights, {"validation_status": "passed", "dataset": seed_note, "test_macro_f1": "0"}
        )
    registry.make_champion(
        version, {"promotion_decision": "promoted", "promotion_reason": seed_note}
    )
    return version
