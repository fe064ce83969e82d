"""In-process: the original call pattern (the yardstick) against the pipeline.

The original, per request and with no caches: embed the query, take the top 4 reviews,
stuff them into one prompt, generate with T5, score each review's sentiment with one call
per review. The same models serve both sides, generating the same fixed number of tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.harness import measure
from benchmarks.workspace import BenchWorkspace, fresh_questions
from components.analysis.pipeline import ReviewAnalysisPipeline
from components.emotions import emotion_query
from components.index.embedder import SentenceTransformerEmbedder
from components.index.store import load_index
from components.nlp.sentiment import TransformerSentimentScorer
from components.nlp.summarize import FlanT5Summarizer
from components.settings import DEFAULT_EMBEDDER
from components.vision.predict import EmotionPredictor
from components.vision.prediction import ClassifierSource


class OriginalPattern:
    """The seed system's request path, reproduced with the same models."""

    def __init__(self, workspace: BenchWorkspace) -> None:
        settings = workspace.settings
        self.embedder = SentenceTransformerEmbedder.load(DEFAULT_EMBEDDER)
        self.stored = load_index(settings.paths.index_root)
        fp32 = settings.nlp.model_copy(update={"quantize_int8": False})
        self.summarizer = FlanT5Summarizer.load(settings.nlp.summarizer_model, fp32)
        self.sentiment = TransformerSentimentScorer.load(settings.nlp.sentiment_model)
        self.predictor = EmotionPredictor.from_weights(workspace.weights, settings.vision)
        self.tokens = settings.nlp.max_new_tokens

    def answer(self, query: str) -> dict[str, Any]:
        import torch

        vector = self.embedder.encode([query])
        _, ids = self.stored.index.search(vector, 4)
        texts = [str(self.stored.metadata.iloc[int(i)]["text"]) for i in ids[0]]
        prompt = "summarize: " + " ".join(texts)
        tokenizer, model = self.summarizer.tokenizer, self.summarizer.model
        encoded = tokenizer(
            prompt, return_tensors="pt", truncation=True, max_length=512,
            return_token_type_ids=False,
        )  # fmt: skip
        with torch.inference_mode():
            output = model.generate(
                **encoded, max_new_tokens=self.tokens, min_new_tokens=self.tokens, do_sample=False
            )
        summary = tokenizer.decode(output[0], skip_special_tokens=True)
        sentiments = [self.sentiment.score([text])[0] for text in texts]  # one call each
        return {"summary": summary, "sentiments": sentiments}

    def photo(self, data: bytes) -> dict[str, Any]:
        emotion = self.predictor.predict(data).primary.emotion
        return self.answer(emotion_query(emotion))


def int8_agreement(fp32: FlanT5Summarizer, int8: FlanT5Summarizer, texts: list[str]) -> dict:
    """How close int8 T5 is to fp32. Greedy generations from random weights are degenerate
    (one token repeated), so this compares teacher-forced next-token logits: the decoder
    reads each text's own tokens, and we report top-1 agreement per position and the
    relative L2 error of the logits (plus the generated-token agreement, for the record)."""
    import torch

    top1, errors, generated_same = [], [], []
    tokenizer = fp32.tokenizer
    for text in texts:
        encoded = tokenizer(
            "summarize: " + text, return_tensors="pt", truncation=True, max_length=256,
            return_token_type_ids=False,
        )  # fmt: skip
        target = tokenizer(text, return_tensors="pt", truncation=True, max_length=32)["input_ids"]
        start = torch.full((1, 1), fp32.model.config.decoder_start_token_id)
        decoder_input = torch.cat([start, target[:, :-1]], dim=1)
        logits = []
        for summarizer in (fp32, int8):
            with torch.inference_mode():
                logits.append(
                    summarizer.model(**encoded, decoder_input_ids=decoder_input).logits[0]
                )
        a, b = logits
        top1.append(float((a.argmax(-1) == b.argmax(-1)).float().mean()))
        errors.append(float((a - b).norm() / a.norm()))
        outputs = []
        for summarizer in (fp32, int8):
            with torch.inference_mode():
                outputs.append(
                    summarizer.model.generate(
                        **encoded, max_new_tokens=8, min_new_tokens=8, do_sample=False
                    )[0].tolist()
                )
        generated_same.append(outputs[0] == outputs[1])
    return {
        "texts": len(texts),
        "teacher_forced_top1_agreement": float(np.mean(top1)),
        "relative_logit_error": float(np.mean(errors)),
        "generated_tokens_identical": float(np.mean(generated_same)),
    }


def run(workspace: BenchWorkspace, int8_workspace: BenchWorkspace, smoke: bool) -> dict[str, Any]:
    repeat = 3 if smoke else 12
    original = OriginalPattern(workspace)
    questions = fresh_questions(repeat + 3, "orig")
    original_text, _ = measure(lambda i: original.answer(questions[i]), repeat, warmup=2)
    original_photo, _ = measure(lambda i: original.photo(workspace.photo), repeat, warmup=1)

    source = ClassifierSource(workspace.weights)
    rows: dict[str, Any] = {
        "original_text": original_text.as_dict(),
        "original_photo": original_photo.as_dict(),
    }
    int8_summarizer = None
    for name, ws in (("fp32", workspace), ("int8", int8_workspace)):
        pipeline = ReviewAnalysisPipeline.load(ws.settings, source)
        asks = fresh_questions(repeat + 3, f"ours-{name}")
        text, _ = measure(lambda i, p=pipeline, q=asks: p.from_text(q[i]), repeat, warmup=2)
        photo, _ = measure(lambda i, p=pipeline: p.from_image(workspace.photo), repeat * 4)
        rows[f"pipeline_text_{name}"] = text.as_dict()
        rows[f"pipeline_photo_{name}"] = photo.as_dict()
        if name == "int8":
            int8_summarizer = pipeline.summarizer
    texts = original.stored.metadata["text"].astype(str).tolist()[: 4 if smoke else 20]
    rows["int8_agreement"] = int8_agreement(original.summarizer, int8_summarizer, texts)
    return rows
