"""Profiles: typed settings read from `orchestration/profiles/<name>.toml`.

A profile names where data lives and which backbone embeds it. The active profile comes from
the CLI flag, else `SCORETAG_PROFILE`, else `demo`; `SCORETAG_CONFIG` may name a TOML file
whose tables override the profile's (for example a local checkpoint path).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PROFILES_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "demo"


class ProfileError(ValueError):
    """A profile or config file that cannot be used, with a message meant for the user."""


def _known_site(name: str) -> str:
    # Imported here: storage imports this module (for Settings).
    from orchestration.storage import SITES

    if name not in SITES:
        raise ValueError(f"unknown site {name!r}: choose among {', '.join(SITES)}")
    return name


# A site named in a profile: a typo would otherwise match no post and change nothing, silently.
Site = Annotated[str, AfterValidator(_known_site)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# `cuda` takes a free GPU of the machine (orchestration/devices.py); `cuda:N` is that one.
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"


class BackboneSettings(_Strict):
    """The open_clip image encoder that embeds every image."""

    model: str = "ViT-L-14"
    pretrained: str = "openai"
    checkpoint: str = ""
    device: str = Field(default="auto", pattern=DEVICE_PATTERN)
    precision: Literal["fp32", "fp16", "bf16"] = "fp16"
    batch_size: int = Field(default=256, ge=1)
    seed: int = 0

    @property
    def trained(self) -> bool:
        """False for a randomly initialised backbone, whose features carry no quality signal."""
        return bool(self.pretrained or self.checkpoint)


class IngestSettings(_Strict):
    """How raw files are read (see assets/ingest)."""

    quarantine_threshold: float = Field(default=0.01, ge=0, le=1)
    danbooru_rating_scheme: Literal["auto", "pre2022", "current"] = "auto"
    batch_rows: int = Field(default=100_000, ge=1)
    # Days a full export superseded by a newer one of its site stays on disk (for lineage;
    # no stage reads it) before an ingest removes its tables and raw file; 0: at once.
    superseded_retention_days: int = Field(default=14, ge=0)


class NormalizeSettings(_Strict):
    """How popularity becomes `norm_score` (see assets/normalize and README)."""

    wilson_z: float = Field(default=1.96, gt=0)
    weight_wilson: float = Field(default=0.5, ge=0)
    weight_favorites: float = Field(default=0.3, ge=0)
    weight_score: float = Field(default=0.2, ge=0)
    period: str = Field(default="1y", pattern=r"^[1-9][0-9]*(y|mo|q)$")
    maturity_days: int = Field(default=30, ge=0)
    min_cohort_size: int = Field(default=50, ge=1)
    site_priority: tuple[Site, ...] = ("danbooru", "e621", "gelbooru", "derpibooru")
    # How a run works, not what it works out (changing these rescores nothing):
    memory_mb: int = Field(default=512, ge=64)  # DuckDB's cap; past it, it spills to disk
    batch_rows: int = Field(default=250_000, ge=1_000)  # rows scored in memory at a time
    keep_changes: int = Field(default=30, ge=1)  # change files kept for the catalog to apply


DEFAULT_STYLES: dict[str, tuple[str, ...]] = {
    # The first style whose tags a post carries wins; posts with none are "other".
    "3d": ("3d", "3d_(artwork)", "source filmmaker", "blender_(software)", "koikatsu_(medium)"),
    "pixel_art": ("pixel_art", "pixel_(artwork)", "pixel art"),
    "comic": ("comic", "4koma", "manga", "comic page"),
    "sketch": ("sketch", "lineart", "line_art", "rough sketch"),
    "monochrome": ("monochrome", "greyscale", "grayscale"),
    "photorealistic": (
        "photorealistic",
        "realistic",
        "photo_(medium)",
        "photography_(artwork)",
        "photo",
        "irl",
    ),
    "traditional": (
        "traditional_media",
        "traditional_media_(artwork)",
        "traditional art",
        "watercolor_(medium)",
        "watercolor_(artwork)",
        "watercolor painting",
    ),
}


class PoolSettings(_Strict):
    """How the rating pool is drawn (see assets/pool)."""

    size: int = Field(default=20_000, ge=1)
    min_per_stratum: int = Field(default=2, ge=0)
    seed: int = 0
    styles: dict[str, tuple[str, ...]] = DEFAULT_STYLES
    non_image_exts: tuple[str, ...] = ("mp4", "webm", "swf", "zip", "flv", "mov", "mkv", "avi")


class LabelSettings(_Strict):
    """The labeling app and manual_labels (see assets/labels)."""

    repeat_share: float = Field(default=0.05, ge=0, le=0.5)
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    min_coverage: float = Field(default=0.5, ge=0, le=1)
    min_self_consistency: float = Field(default=0.6, ge=0, le=1)
    # The page shows previews with this long side in pixels (0: the originals), made once and
    # cached under data/image_cache/previews, at most preview_cache_mb.
    preview_long_side: int = Field(default=1024, ge=0)
    preview_format: Literal["webp", "jpeg"] = "webp"
    preview_cache_mb: int = Field(default=2048, ge=1)
    # Compare mode: the share of pairs drawn uniformly from the pool (the rest are close
    # pairs, see assets/labels/pairing.py); hidden repeats come at repeat_share.
    random_pair_share: float = Field(default=0.2, ge=0, le=1)


class EmbedSettings(_Strict):
    """How images are read and their embeddings stored (see assets/embeddings).

    `workers`: processes decoding images (0: decode in the model's process); auto is one
    per core, at most 16."""

    workers: Annotated[int, Field(ge=0)] | Literal["auto"] = "auto"  # decoding processes
    prefetch: int = Field(default=4, ge=1)  # batches each worker decodes ahead
    shard_size: int = Field(default=8192, ge=1)  # embeddings per parquet shard
    max_pixels: int = Field(default=89_478_485, ge=1)  # bigger pictures are refused as bombs
    # Decode big JPEGs at a reduced DCT scale (1/2 to 1/8) that still covers the model's
    # input: about 3x faster decoding, but not a whole decode's pixels (a few levels off on
    # photos, more on noise), so not the features heads made elsewhere were trained on.
    jpeg_draft: bool = False
    # Optional parquet or CSV listing image files: a `path` column (absolute, or relative to
    # the image root) and `md5`, `sha512` or `image_key`; for images not named by their md5.
    image_index: str = ""


class ImageSource(_Strict):
    """One place images are kept (see assets/images and docs/stages/images.md).

    `path`: a folder or a tar shard ("" is the image root; relative paths are under it).
    `layout`: how an image is named there: `auto` (loose files and tar members named by md5
    or sha512, or keyed by their `.json` sidecar; anything else is hashed once), `md5` (the
    same, never hashing), `post_id` (tar members or files named `<post_id>.<ext>` of `site`,
    as danbooru2023's `data-NNNN.tar`). `index`: a parquet or CSV file listing images
    instead (`path`, optional `member` inside a tar, and `md5`, `sha512`, `image_key` or
    `post_key`); its relative paths are under `path`."""

    path: str = ""
    layout: Literal["auto", "md5", "post_id"] = "auto"
    site: Site | Literal[""] = ""
    index: str = ""

    @model_validator(mode="after")
    def _site_for_post_ids(self) -> ImageSource:
        if self.layout == "post_id" and not self.site:
            raise ValueError('layout = "post_id" needs the `site` whose post ids name the files')
        return self


class ImageSettings(_Strict):
    """Where images are found (see assets/images). No sources: the image root, layout auto.

    The other fields are how missing images are downloaded (`scoretag images fetch`, and the
    image_files step when `fetch` is on): see docs/stages/images.md#downloading."""

    sources: tuple[ImageSource, ...] = ()
    fetch: bool = False  # image_files downloads what is missing on every run (pool `network`)
    # Sites ask for one naming the tool and a contact: "scoretag/0.1 (by NAME; MAIL)".
    user_agent: str = ""
    concurrency: int = Field(default=8, ge=1)  # downloads at once, all sites together
    rate_limit: float = Field(default=2.0, ge=0)  # requests per second to a site; 0: no limit
    rate_limits: dict[Site, Annotated[float, Field(ge=0)]] = {}  # per site, over rate_limit
    retries: int = Field(default=4, ge=0)  # after a timeout, a dropped body, 429 or 5xx
    backoff_s: float = Field(default=1.0, ge=0)  # the first retry's wait, doubled each time
    max_wait_s: float = Field(default=120.0, ge=0)  # the longest backoff or Retry-After
    timeout_s: float = Field(default=30.0, gt=0)  # to connect, and between two reads


class HeadSettings(_Strict):
    """How the aesthetic head is trained and gated (see assets/head)."""

    head_type: Literal["mlp", "ridge"] = "mlp"
    hidden: tuple[int, ...] = (256,)  # MLP hidden layer sizes
    dropout: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=0.05, ge=0)
    lr: float = Field(default=2e-3, gt=0)
    batch_size: int = Field(default=512, ge=1)
    max_epochs: int = Field(default=200, ge=1)
    patience: int = Field(default=10, ge=1)  # epochs without a better validation MSE
    pairwise_weight: float = Field(default=0.0, ge=0)  # Bradley-Terry term; 0: MSE only
    # What the head learns from: the ratings (MSE), human pairs (manual_labels' pairs.parquet,
    # a Bradley-Terry loss with Davidson's ties) or both; "ratings" until the labels bench
    # shows pairs pay. Held-out pair accuracy is reported whichever, when pairs exist.
    train_on: Literal["ratings", "pairs", "both"] = "ratings"
    pair_temperature: float = Field(default=0.1, gt=0)  # a score gap of this = odds e:1
    pair_weight: float = Field(default=0.1, gt=0)  # the pairs' loss beside the MSE in "both"
    # What the head learns from the ratings: the qualities themselves, or their RankGauss
    # transform (ranked, ties averaged, mapped to normal quantiles, as Aesthetic Predictor
    # V2.5 did), which spreads a pile-up on one rating; predictions are mapped back to the
    # label scale, and CV reports the same head without it beside. Ratings only (pairs have
    # no targets to rank): "rankgauss" needs train_on = "ratings".
    target_transform: Literal["none", "rankgauss"] = "none"
    folds: int = Field(default=5, ge=2)
    seed: int = 0
    min_labels: int = Field(default=50, ge=10)  # fewer: no head is trained
    # The quality gate: CV Spearman at least this, and not below ridge's by more than
    # `ridge_margin`; otherwise the active head stays.
    min_spearman: float = Field(default=0.3, ge=-1, le=1)
    ridge_margin: float = Field(default=0.02, ge=0)
    # ... and not below the active head's Spearman by more than `active_margin` (0: at least
    # as good), on labels neither was trained on: the labels added since the active head was
    # trained when there are at least `min_fresh_labels`, else each head's CV figure.
    active_margin: float = Field(default=0.0, ge=0)
    min_fresh_labels: int = Field(default=30, ge=2)
    # The uncertainty round of the rating pool (`scoretag head uncertainty-round`).
    round_size: int = Field(default=500, ge=1)
    round_models: int = Field(default=8, ge=2)  # bootstrap heads in the ensemble
    near_duplicate_cosine: float = Field(default=0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _transform_needs_ratings(self) -> HeadSettings:
        if self.target_transform != "none" and self.train_on != "ratings":
            raise ValueError(
                f'target_transform = "{self.target_transform}" needs train_on = "ratings", '
                f'not "{self.train_on}": it transforms ratings, and pairs have none to rank'
            )
        return self


class CatalogSettings(_Strict):
    """The scored catalog in DuckDB (see assets/catalog)."""

    # Older heads whose scores are kept beside the active's.
    keep_heads: int = Field(default=3, ge=0)
    # A head's percentiles are ranked again once its scores grew or shrank by this share
    # since they were last ranked; between, new scores rank against that reference.
    rerank_growth: float = Field(default=0.1, ge=0)
    # How long a writer (or `scoretag query`) waits while another process has the catalog
    # open, before it fails saying which: a daily run takes minutes, not hours.
    lock_timeout_s: float = Field(default=300, ge=0)
    # DuckDB's memory limit for the writer and the exports: joins and sorts past it spill to
    # a temporary folder beside the catalog, so a first run over ten million posts fits a
    # small worker (DuckDB's own default is 80% of the machine's memory).
    memory_mb: int = Field(default=2048, ge=256)


Rating = Literal["g", "s", "q", "e"]
RATINGS: tuple[Rating, ...] = ("g", "s", "q", "e")
# Bucket N (2-9) starts at the (N-2)th value; below the first is bucket 1. The V6 reading:
# score_N means "N/10 good and up".
DECILE_CUT_POINTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class CaptionSettings(_Strict):
    """Score buckets, captions and the exports of caption_shards (see assets/captions).

    `cut_points`: where buckets 2..9 start, read as scores (policy `absolute`) or as
    percentiles of the calibration scope's scores (policy `quantile`)."""

    policy: Literal["absolute", "quantile"] = "quantile"
    cut_points: tuple[float, ...] = DECILE_CUT_POINTS
    calibration_sites: tuple[Site, ...] = ()  # the calibration scope; empty: every site
    calibration_ratings: tuple[Rating, ...] = ()  # empty: every rating
    # The caption vocabulary: a shipped one (pony-v6 alias v6, pony-v7 alias v7, animagine,
    # noobai, none) or a TOML file of one's own (docs/stages/captions.md#vocabularies).
    style: str = "v6"
    # More vocabularies caption_shards exports every format in, each to its own folder
    # (`<format>-<style>`), e.g. ["animagine"] beside Pony's tags.
    also_styles: tuple[str, ...] = ()
    min_bucket: int = Field(default=1, ge=1, le=9)  # lower buckets are not exported
    ratings: tuple[Rating, ...] = RATINGS  # exported ratings
    sites: tuple[Site, ...] = ()  # exported sites; empty: every site
    rating_tags: dict[Rating, str] = {
        "g": "rating_safe",
        "s": "rating_questionable",
        "q": "rating_questionable",
        "e": "rating_explicit",
    }
    source_tags: dict[Site, str] = {}  # site -> tag after the rating tag (Pony's source_*)
    blacklist: tuple[str, ...] = ()  # dropped tags, in either spelling (spaces or underscores)
    underscores_to_spaces: bool = True
    escape_parentheses: bool = True  # `\(` and `\)`, as A1111-style prompts need
    keep_tokens_separator: str = ""  # e.g. "|||": written between the fixed tags and the rest
    formats: tuple[Literal["parquet", "jsonl", "kohya", "kohya_json", "webdataset", "hf"], ...] = (
        "parquet",
    )
    shard_size: int = Field(default=10_000, ge=1)
    caption_extension: str = Field(default=".txt", pattern=r"^\.[A-Za-z0-9_.-]+$")
    sidecar_layout: Literal["mirror", "beside"] = "mirror"  # kohya: a mirror tree, or beside
    distribution_tolerance: float = Field(default=0.05, gt=0, le=1)  # bucket share drift

    @field_validator("cut_points")
    @classmethod
    def _eight_rising(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) != 8 or any(not 0 < v < 1 for v in value):
            raise ValueError("give 8 values in (0, 1): where buckets 2 to 9 start")
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError("cut points must rise strictly")
        return value

    @field_validator("style", "also_styles")
    @classmethod
    def _known_style(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        from assets.captions.vocabulary import resolve  # a settings error names the problem

        for style in (value,) if isinstance(value, str) else value:
            resolve(style)
        return value

    @field_validator("rating_tags")
    @classmethod
    def _every_rating(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [r for r in RATINGS if not value.get(r)]
        if missing:
            raise ValueError(f"give a tag for every rating (missing: {', '.join(missing)})")
        return value

    @field_validator("formats")
    @classmethod
    def _some_format(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one format")
        return tuple(dict.fromkeys(value))


class EvaluationSettings(_Strict):
    """Evaluating generated images (see assets/evaluation and docs/stages/evaluation.md)."""

    heads: tuple[str, ...] = ()  # head versions (or unique prefixes) scored beside the active one
    good_bucket: int = Field(default=7, ge=1, le=9)  # the good image rate: share at or above it
    resamples: int = Field(default=2000, ge=100)  # bootstrap resamples per difference
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    seed: int = 0
    compare_with: int = Field(default=5, ge=0)  # the asset compares a set with this many others
    # A set compared with none warns when its mean score's interval is wider than this (± half).
    resolution: float = Field(default=0.02, gt=0, lt=1)


class ScheduleSettings(_Strict):
    """The daily schedules: ingest the inbox, then score what is new (see orchestration)."""

    daily_at: str = Field(default="04:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # HH:MM
    timezone: str = "UTC"
    images_after_minutes: int = Field(default=30, ge=0, le=720)  # after the ingest tick
    rescore_after_minutes: int = Field(default=60, ge=0, le=720)  # after the ingest tick

    def cron(self, delay_minutes: int = 0) -> str:
        hour, minute = (int(part) for part in self.daily_at.split(":"))
        total = (hour * 60 + minute + delay_minutes) % (24 * 60)
        return f"{total % 60} {total // 60} * * *"


class Toleration(_Strict):
    """A Kubernetes toleration: lets a pod onto nodes with a matching taint (GPU node pools
    are usually tainted so that only pods asking for a GPU land there)."""

    key: str = "nvidia.com/gpu"
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str = ""  # with operator Equal
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class DeploySettings(_Strict):
    """How runs execute (see orchestration/deploy.py and deploy/README.md).

    `executor`: `multiprocess` (Dagster's default: one process per step, or all in one process
    when a run's config asks), `in_process`, or `k8s` (dagster-k8s's k8s_job_executor: one
    Kubernetes pod per step; needs the `k8s` extra and the K8sRunLauncher). The `gpu_*` fields
    apply to the pods of GPU steps, on top of the one nvidia.com/gpu their op tags ask for."""

    executor: Literal["multiprocess", "in_process", "k8s"] = "multiprocess"
    gpu_node_selector: dict[str, str] = {}
    gpu_tolerations: tuple[Toleration, ...] = ()
    # Kubernetes quantities requested beside the GPU, for the step's decoding workers
    # ("8", "500m"; "32Gi"). Empty: none asked.
    gpu_step_cpu: str = Field(default="", pattern=r"^([0-9]+(\.[0-9]+)?m?)?$")
    gpu_step_memory: str = Field(default="", pattern=r"^([0-9]+(\.[0-9]+)?([KMGTPE]i?)?)?$")


class DemoSettings(_Strict):
    """Size and seed of the generated demo dataset."""

    seed: int = 0
    images: int = Field(default=600, ge=60)
    posts: int = Field(default=2000, ge=200)


class Settings(_Strict):
    """Everything a profile decides."""

    name: str
    description: str = ""
    image_root: str = ""
    gpu_slots: int = Field(default=1, ge=1)
    ingest: IngestSettings = IngestSettings()
    normalize: NormalizeSettings = NormalizeSettings()
    pool: PoolSettings = PoolSettings()
    labels: LabelSettings = LabelSettings()
    backbone: BackboneSettings = BackboneSettings()
    images: ImageSettings = ImageSettings()
    embed: EmbedSettings = EmbedSettings()
    head: HeadSettings = HeadSettings()
    catalog: CatalogSettings = CatalogSettings()
    captions: CaptionSettings = CaptionSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    deploy: DeploySettings = DeploySettings()
    demo: DemoSettings | None = None


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ProfileError(f"config file not found: {path}") from None
    except OSError as e:  # a folder, or a file this user may not read
        raise ProfileError(f"cannot read the config file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path} is not valid TOML: it is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path} is not valid TOML: {e}") from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(e: ValidationError, sources: str) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
    )
    return f"invalid settings in {sources}: {problems}"


def load_settings(profile: str | None = None, config: str | Path | None = None) -> Settings:
    """Read a profile, apply the optional override file, validate every field."""
    name = profile or os.environ.get("SCORETAG_PROFILE") or DEFAULT_PROFILE
    path = PROFILES_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(available_profiles())
        raise ProfileError(f"unknown profile {name!r}: choose one of {known}")
    raw = _read_toml(path)
    sources = str(path)
    config = config or os.environ.get("SCORETAG_CONFIG") or None
    if config:
        raw = _merge(raw, _read_toml(Path(config)))
        sources += f" + {config}"
    try:
        return Settings(name=name, **raw)
    except ValidationError as e:
        raise ProfileError(_describe(e, sources)) from None
