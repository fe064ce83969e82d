"""The Photo, Ask and Sentiment tabs: each reads its input, calls one served endpoint through
:class:`~serving.app.context.AppContext`, and renders the answer with the shared views."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from components.emotions import EMOTIONS, emotion_query
from serving.app.answer_view import answer_view, download_json, probabilities_view
from serving.app.context import AppContext
from serving.app.feedback_view import correction_form, vote_buttons
from serving.app.pictures import UploadTooLarge, check_upload_size, draw_faces, upright

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
EMOTION_ICONS = {
    "angry": "😠", "disgust": "🤢", "fear": "😨", "happy": "😄",
    "sad": "😢", "surprise": "😲", "neutral": "😐",
}  # fmt: skip
ANY_EMOTION = "any emotion"


# --------------------------------------------------------------------------- photo


def photo_tab(ctx: AppContext) -> None:
    st.markdown(
        "Upload a photo of a face, or take one: the served classifier names the emotion, "
        "and the customers' reviews say why people feel it."
    )
    uploaded = st.file_uploader(
        "A photo of a face",
        type=IMAGE_TYPES,
        key="photo-upload",
        max_upload_size=2 * ctx.settings.serving.max_request_mb,
    )
    left, right = st.columns(2)
    with left:
        all_faces = st.toggle(
            "all faces",
            key="all-faces",
            help=f"Classify every face (at most {ctx.settings.vision.max_faces}), a card each.",
        )
    with right:
        use_camera = st.toggle("use the camera", key="use-camera")
    taken = st.camera_input("Take a photo", key="camera") if use_camera else None
    picture = taken or uploaded
    if picture is None:
        st.info("No photo yet: upload one above (JPEG, PNG, WebP, …).")
        return
    data = picture.getvalue()
    try:
        check_upload_size(data, ctx.settings.serving.max_request_mb)
    except UploadTooLarge as error:
        st.error(str(error), icon="⚠️")
        return
    answers = photo_answers(ctx, picture.file_id, data, all_faces)
    if answers is None:
        return
    photo_view(ctx, data, answers)


def photo_answers(
    ctx: AppContext, upload_id: str, data: bytes, all_faces: bool
) -> dict[str, Any] | None:
    """The served answer for this upload (and one per other emotion among its faces),
    asked once per upload and toggle: reruns of the page reuse it."""
    key = (upload_id, all_faces)  # Streamlit gives every upload and camera shot a new id
    kept = st.session_state.get("photo-answers")
    if kept is not None and kept["key"] == key:
        return kept
    st.session_state.pop("photo-answers", None)
    answer = ctx.call("emotion_reviews", lambda: ctx.client.emotion_reviews(data, all_faces))
    if answer is None:
        return None
    by_emotion = {answer["emotion"]: answer}
    for face in answer.get("faces") or []:
        emotion = face["emotion"]
        if emotion not in by_emotion:
            found = ctx.call(
                "reviews", lambda e=emotion: ctx.client.reviews(emotion_query(e), emotion=e)
            )
            if found is None:
                return None
            by_emotion[emotion] = found
    kept = {"key": key, "answer": answer, "by_emotion": by_emotion}
    st.session_state["photo-answers"] = kept
    return kept


def photo_view(ctx: AppContext, data: bytes, answers: dict[str, Any]) -> None:
    """The photo with its face boxes beside the largest face's emotion and probabilities;
    below, one card per face with why customers feel its emotion, a correction form and
    votes on its reviews."""
    answer = answers["answer"]
    faces = answer.get("faces") or [answer["face"]]
    primary = answer["face"]
    picture, summary = st.columns([2, 3])
    with picture:
        st.image(draw_faces(upright(data), faces), width="stretch")
    with summary, st.container(key="photo-emotion"):
        st.markdown(
            f"## {EMOTION_ICONS.get(primary['emotion'], '')} {primary['emotion']} "
            f"{primary['confidence']:.1%}"
        )
        if primary.get("face_crop_input"):
            st.info(answer["note"], icon="ℹ️")  # the predictor's words, as the CLI prints
        elif not primary["face_detected"]:
            st.info("No face found: the whole image was classified.", icon="ℹ️")
        elif len(faces) > 1:
            st.caption(f"{len(faces)} faces: one card each below, largest first.")
        elif answer.get("note"):
            st.caption(answer["note"])
        probabilities_view(primary["probabilities"], key="photo-primary")
    for number, face in enumerate(faces):
        with st.container(border=True, key=f"photo-face-{number}"):
            if len(faces) > 1:
                st.markdown(
                    f"### Face {number + 1}: {EMOTION_ICONS.get(face['emotion'], '')} "
                    f"{face['emotion']} {face['confidence']:.1%}"
                )
                probabilities_view(face["probabilities"], key=f"photo-face-{number}")
            correction_form(ctx.settings, data, face, answer, key=f"photo-face-{number}")
            why = answers["by_emotion"][face["emotion"]]
            answer_view(
                why,
                key=f"photo-face-{number}",
                heading=f"Why customers feel {face['emotion']}",
                vote=lambda review, key, why=why: vote_buttons(ctx.settings, review, why, key),
            )
    download_json(
        {**answer, "answers_by_emotion": answers["by_emotion"]}, "emoreview-photo.json", "photo"
    )


# --------------------------------------------------------------------------- ask


def ask_tab(ctx: AppContext) -> None:
    st.markdown("Ask the reviews a question; narrow it to one emotion if you like.")
    with st.form("ask-form"):
        question = st.text_input(
            "Question", placeholder="Why are customers angry about delivery?", key="ask-question"
        )
        left, right = st.columns([3, 1])
        with left:
            emotion = st.selectbox("Emotion", [ANY_EMOTION, *EMOTIONS], key="ask-emotion")
        with right:
            k = st.number_input(
                "Reviews (k)", min_value=1, max_value=20, value=ctx.settings.retrieval.k,
                key="ask-k",
            )  # fmt: skip
        asked = st.form_submit_button("Ask")
    if asked:
        st.session_state.pop("ask-answer", None)
        if not question.strip():
            st.error("Type a question first: the question is empty.", icon="⚠️")
        else:
            chosen = None if emotion == ANY_EMOTION else emotion
            answer = ctx.call(
                "reviews", lambda: ctx.client.reviews(question, emotion=chosen, k=int(k))
            )
            if answer is not None:
                st.session_state["ask-answer"] = answer
    answer = st.session_state.get("ask-answer")
    if answer is not None:
        about = answer.get("emotion") or "any emotion"
        answer_view(answer, key="ask", heading=f"{answer['query']} ({about})")
        download_json(answer, "emoreview-question.json", "ask")


# --------------------------------------------------------------------------- sentiment


def sentiment_tab(ctx: AppContext) -> None:
    st.markdown("Paste texts, one per line: each gets a sentiment label and score.")
    with st.form("sentiment-form"):
        text = st.text_area("Texts, one per line", height=160, key="sentiment-texts")
        scored = st.form_submit_button("Score")
    if scored:
        st.session_state.pop("sentiment-results", None)
        texts = [line.strip() for line in text.splitlines() if line.strip()]
        if not texts:
            st.error("Paste at least one text first: every line is empty.", icon="⚠️")
        else:
            body = ctx.call("sentiment", lambda: ctx.client.sentiment(texts))
            if body is not None:
                st.session_state["sentiment-results"] = body
    body = st.session_state.get("sentiment-results")
    if body is None:
        return
    table = pd.DataFrame(body["results"])[["text", "label", "score"]]
    with st.container(key="sentiment-table"):
        st.table(table.style.format({"score": "{:.3f}"}))
    st.caption(f"scored by {body.get('versions', {}).get('sentiment', '?')}")
    st.download_button(
        "Download as CSV",
        table.to_csv(index=False),
        file_name="emoreview-sentiment.csv",
        mime="text/csv",
        key="sentiment-download",
    )
