"""The seven FER-2013 emotion classes: the one mapping used by the whole code base.

Index order is FER-2013's (the ``emotion`` column of ``fer2013.csv``). Never derive class
indices from anything else (``torchvision.datasets.ImageFolder`` sorts folders
alphabetically, which disagrees with these ids): map by name through this module.
"""

from __future__ import annotations

from typing import Final, Literal

from components.errors import EmoreviewError

EmotionName = Literal["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

EMOTIONS: Final[tuple[EmotionName, ...]] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)
EMOTION_TO_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(EMOTIONS)}

# Spellings seen in review datasets and emotion models, mapped onto the FER names.
_SYNONYMS: Final[dict[str, EmotionName]] = {
    "anger": "angry",
    "mad": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "joy": "happy",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "calm": "neutral",
}


class UnknownEmotionError(EmoreviewError, ValueError):
    """Raised for a value that is not one of the seven FER-2013 emotions."""

    def __init__(self, value: object) -> None:
        super().__init__(f"unknown emotion {value!r}: expected one of {', '.join(EMOTIONS)}")
        self.value = value


def normalize_emotion(value: str) -> EmotionName:
    """Return the FER name for ``value`` (case-insensitive, common synonyms accepted)."""
    key = value.strip().lower()
    if key in EMOTION_TO_INDEX:
        return key  # type: ignore[return-value]
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    raise UnknownEmotionError(value)


def emotion_query(emotion: str) -> str:
    """The question the original system asked for an emotion, kept verbatim."""
    return f"What are customers saying who feel {normalize_emotion(emotion)}?"
