"""The Models tab: the registry as a person reads it (every version with its alias, metrics,
validation status, data sha256 and gate decision) and the chosen version's evaluation
pictures from its MLflow run. Reads the registry through :mod:`registry`, not an endpoint."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from components.errors import EmoreviewError
from components.settings import Settings

PICTURES = ("confusion_matrix.png", "per_class_accuracy.png", "reliability_diagram.png")
REFRESH_S = 30


@st.cache_data(ttl=REFRESH_S, show_spinner="Reading the registry…")
def registry_rows(settings_json: str) -> dict[str, Any]:
    """Every version's audit row and the champion (cached for a short while: MLflow is
    asked at most every REFRESH_S seconds)."""
    from registry.models import open_registry

    registry = open_registry(Settings.model_validate_json(settings_json))
    return {
        "model": registry.name,
        "champion": registry.champion_version(),
        "rows": [record.row() for record in registry.records()],
    }


@st.cache_data(ttl=REFRESH_S, show_spinner="Fetching the pictures from MLflow…")
def version_pictures(settings_json: str, version: str) -> dict[str, str]:
    """The version's evaluation pictures, downloaded into the app's folder."""
    from registry.models import open_registry

    settings = Settings.model_validate_json(settings_json)
    registry = open_registry(settings)
    target = settings.paths.app_dir / "pictures" / f"v{version}"
    found = {name: registry.run_artifact(version, name, target) for name in PICTURES}
    return {name: str(path) for name, path in found.items() if path is not None}


@st.cache_data(ttl=REFRESH_S, show_spinner="Reading the model card…")
def version_card(settings_json: str, version: str) -> str | None:
    """The version's model card (Markdown), ``None`` when it has none."""
    from registry.cards import read_model_card
    from registry.models import RegistryError, open_registry

    registry = open_registry(Settings.model_validate_json(settings_json))
    try:
        return read_model_card(registry, version)[0]
    except RegistryError:
        return None


def models_tab(settings: Settings) -> None:
    settings_json = settings.model_dump_json()
    try:
        registry = registry_rows(settings_json)
    except EmoreviewError as error:
        st.error(f"Cannot read the registry: {error}", icon="⚠️")
        return
    rows = registry["rows"]
    if not rows:
        st.info(
            f"{registry['model']} has no versions yet: `emoreview registry import-baseline` "
            "or `emoreview train --data ...` registers one."
        )
        return
    st.markdown(
        f"**{registry['model']}**: {len(rows)} versions, champion "
        f"v{registry['champion'] or '—'} (served by `emoreview serve start`)."
    )
    table = pd.DataFrame(
        [
            {
                "version": row["version"],
                "aliases": ", ".join(row["aliases"]),
                "created (UTC)": row["created"][:16].replace("T", " "),
                "test accuracy": row["test_accuracy"],
                "macro-F1": row["test_macro_f1"],
                "architecture": row["architecture"],
                "dataset": row["dataset"],
                "validation": row["validation_status"]
                or ("external" if row["source"] == "external" else None),
                "data sha256": (row["data_sha256"] or "")[:12],
                "gate decision": row["promotion_decision"],
                "why": row["promotion_reason"],
            }
            for row in reversed(rows)
        ]
    )
    with st.container(key="models-table"):
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                "test accuracy": st.column_config.NumberColumn(format="%.3f"),
                "macro-F1": st.column_config.NumberColumn(format="%.3f"),
            },
        )
    versions = [row["version"] for row in reversed(rows)]
    default = versions.index(registry["champion"]) if registry["champion"] in versions else 0
    chosen = st.selectbox(
        "Model card and evaluation pictures of version", versions, index=default,
        key="models-version",
        format_func=lambda v: f"v{v}" + (" (champion)" if v == registry["champion"] else ""),
    )  # fmt: skip
    try:
        pictures = version_pictures(settings_json, chosen)
        card = version_card(settings_json, chosen)
    except EmoreviewError as error:
        st.error(f"Cannot fetch the pictures of v{chosen}: {error}", icon="⚠️")
        return
    with st.expander(f"Model card of v{chosen}", expanded=False, key="models-card"):
        if card is None:
            st.info(f"v{chosen} has no model card: `emoreview registry card --publish {chosen}`")
        else:
            st.markdown(card)
    if not pictures:
        st.info(
            f"v{chosen} has no evaluation pictures: it was imported, not trained and "
            "evaluated here (its accuracy is what its authors reported)."
        )
        return
    columns = st.columns(len(pictures))
    for column, (name, path) in zip(columns, sorted(pictures.items()), strict=True):
        with column:
            st.image(path, caption=f"v{chosen}: {name.removesuffix('.png').replace('_', ' ')}")
