"""Tiny randomly initialised transformer models, saved like hub checkpoints.

No weights can be downloaded here, so tests build models with the real architectures'
classes (T5, RoBERTa) at toy sizes and ``save_pretrained`` them; the production loading
code then reads them exactly as it would read google/flan-t5-base or the cardiffnlp model.
The tokenizer is all-MiniLM-L6-v2's (shipped offline), saved next to each model.
"""

from __future__ import annotations

from pathlib import Path

SENTIMENT_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
# j-hartmann/emotion-english-distilroberta-base's labels, in its order.
EMOTION_MODEL_LABELS = {
    0: "anger",
    1: "disgust",
    2: "fear",
    3: "joy",
    4: "neutral",
    5: "sadness",
    6: "surprise",
}


def _tokenizer():
    from transformers import AutoTokenizer

    from components.index.embedder import packaged_minilm_path

    return AutoTokenizer.from_pretrained(str(packaged_minilm_path()))


def save_tiny_t5(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_roberta_classifier(folder: Path, labels: dict[int, str], seed: int = 0) -> Path:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    model = RobertaForSequenceClassification(config)
    # Random heads give near-uniform outputs; scale them so labels differ between texts.
    with torch.no_grad():
        for parameter in model.classifier.parameters():
            parameter.mul_(40.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
