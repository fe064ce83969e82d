"""Feedback from the Photo tab: "wrong emotion? pick the right one" per face, and helpful /
not helpful per review. Rows go to the feedback store (``feedback.url``); a face crop only with the
person's explicit consent, and only the 48x48 grayscale crop the classifier saw."""

from __future__ import annotations

from typing import Any

import streamlit as st

from components.emotions import EMOTIONS
from components.errors import EmoreviewError
from components.feedback.store import FeedbackStore, ServedVersions
from components.settings import Settings
from components.vision.faces import classified_face, decode_image

CONSENT_TEXT = "I agree: keep this face's 48x48 crop for training"
CONSENT_HELP = (
    "Only the 48x48 grayscale crop the classifier saw is kept, never the photo, so that the "
    "next training can learn from your correction. Without this box only the correction "
    "and the crop's sha256 are stored. `emoreview feedback purge` deletes them."
)


@st.cache_resource(show_spinner=False)
def feedback_store(url: str | None, feedback_dir: str) -> FeedbackStore:
    """One store (connection pool) per app process."""
    from pathlib import Path

    return FeedbackStore.open(url, Path(feedback_dir))


def open_store(settings: Settings) -> FeedbackStore:
    return feedback_store(settings.feedback.url, str(settings.paths.feedback_dir))


def correction_form(
    settings: Settings, photo: bytes, face: dict[str, Any], answer: dict[str, Any], key: str
) -> None:
    """Pick the right emotion for one face (with or without consent to keep its crop)."""
    with st.form(f"{key}-correction", border=False):
        left, middle, right = st.columns([2, 3, 1], vertical_alignment="bottom")
        with left:
            others = [e for e in EMOTIONS if e != face["emotion"]]
            right_emotion = st.selectbox(
                "Wrong emotion? Pick the right one", others, key=f"{key}-right-emotion"
            )
        with middle:
            consent = st.checkbox(CONSENT_TEXT, key=f"{key}-consent", help=CONSENT_HELP)
        with right:
            sent = st.form_submit_button("Send")
    if not sent:
        return
    try:
        gray = decode_image(photo, max_pixels=settings.vision.max_image_pixels)
        row = open_store(settings).add_correction(
            face=classified_face(gray, face["box"]),
            corrected_emotion=right_emotion,
            predicted_probabilities=face["probabilities"],
            versions=ServedVersions.from_answer(answer),
            consent=consent,
            source="app",
        )
    except EmoreviewError as error:
        st.error(f"The correction was not saved: {error}", icon="⚠️")
        return
    kept = "its face crop is kept for training" if consent else "no face was kept"
    with st.container(key=f"{key}-correction-saved"):
        st.success(f"Thanks: saved as feedback {row.id} ({right_emotion}; {kept}).", icon="✅")


def vote_buttons(
    settings: Settings, review: dict[str, Any], answer: dict[str, Any], key: str
) -> None:
    """Helpful / not helpful (thumbs up / down): did this review explain the emotion?"""
    up, down, said = st.columns([2, 2, 5], vertical_alignment="center")
    with up:
        helpful = st.button(
            "helpful", icon=":material/thumb_up:", key=f"{key}-up", help="This review explains it"
        )
    with down:
        unhelpful = st.button(
            "not helpful", icon=":material/thumb_down:", key=f"{key}-down",
            help="This review does not explain it",
        )  # fmt: skip
    if not (helpful or unhelpful):
        return
    try:
        row = open_store(settings).add_vote(
            review_id=str(review.get("review_id", "")),
            helpful=helpful,
            emotion=answer.get("emotion"),
            versions=ServedVersions.from_answer(answer),
            source="app",
        )
    except EmoreviewError as error:
        with said:
            st.error(f"The vote was not saved: {error}", icon="⚠️")
        return
    with said, st.container(key=f"{key}-voted"):
        st.caption(f"Thanks: vote {row.id} saved ({'helpful' if helpful else 'not helpful'}).")
