"""aesthetic_head: a head trained on manual_labels and embeddings, evaluated by
cross-validation beside its baselines, and made active only when it passes the gate."""

import json
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.embeddings.assets import embeddings, store_for
from assets.head.artifact import (
    BackboneMismatch,
    Head,
    build_card,
    require_backbone,
    same_space,
    space_of,
)
from assets.head.gate import Comparison, compare, decide, gate_rows
from assets.head.inputs import join_labels, join_pairs
from assets.head.models import MLPConfig
from assets.head.pairfit import PairConfig
from assets.head.paths import last_training_path, registry
from assets.head.published import FAMILIES, family_of
from assets.head.registry import Registry
from assets.head.train import (
    TrainingData,
    TrainSettings,
    cross_validate,
    final_transform,
    fit_final,
)
from assets.labels.assets import manual_labels
from assets.labels.paths import labels_path, pairs_path
from assets.labels.resolve import LABELS
from assets.pool.paths import pool_path
from orchestration.atomic import write_bytes
from orchestration.backbone import Identity
from orchestration.plots import calibration_png, markdown_image, markdown_table
from orchestration.resources import BackboneResource, ScoretagResource
from orchestration.settings import HeadSettings

METRIC_COLUMNS = ("spearman", "kendall_tau_b", "pairwise_accuracy", "qwk", "mse", "mae")


def train_settings(settings: HeadSettings) -> TrainSettings:
    mlp = MLPConfig(
        hidden=tuple(settings.hidden),
        dropout=settings.dropout,
        weight_decay=settings.weight_decay,
        lr=settings.lr,
        batch_size=settings.batch_size,
        max_epochs=settings.max_epochs,
        patience=settings.patience,
        pairwise_weight=settings.pairwise_weight,
    )
    pair = PairConfig(temperature=settings.pair_temperature, weight=settings.pair_weight)
    return TrainSettings(
        settings.head_type,
        mlp,
        settings.folds,
        settings.seed,
        settings.train_on,
        pair,
        settings.target_transform,
    )


def imported_heads(heads: Registry, identity: Identity) -> dict[str, Head]:
    """The newest imported head of each published family ("laion", "v25") made for this
    backbone, by family: the baselines cross-validation scores beside ridge."""
    found: dict[str, Head] = {}
    for card in reversed(heads.cards()):
        family = family_of(str(card.get("head_type", "")))
        if family is None or family in found or not card.get("backbone"):
            continue
        if same_space(space_of(card), asdict(identity)):
            found[family] = heads.load(card["version"])
    return {family: found[family] for family in FAMILIES if family in found}


def active_head(heads: Registry, identity: Identity) -> tuple[Head | None, bool]:
    """The head active before this training, and whether it was made for this backbone."""
    version = heads.active_version()
    if version is None:
        return None, True
    active = heads.load(version)
    try:
        require_backbone(active, asdict(identity))
    except BackboneMismatch:
        return active, False
    return active, active.input_dim == identity.embed_dim


def gate_metadata(record: dict) -> dict:
    """The gate's table (both heads side by side) and its figures as plain numbers."""
    versus = Comparison(**record["gate"]["versus"])
    metadata: dict = {
        "gate_table": markdown_table(gate_rows(record)),
        "gate_comparison": versus.method,
        "gate_labels_compared": versus.labels,
    }
    if versus.compared:
        metadata["gate_new_spearman"] = float(versus.new_spearman)
        metadata["gate_active_spearman"] = float(versus.active_spearman)
    return metadata


def metrics_table(cv_metrics: dict) -> list[dict]:
    """Every model's figures on the ratings, and on the held-out human pairs when there are
    any (`pair_accuracy`: non-tie pairs whose winner scores higher)."""
    rows = []
    for name, m in cv_metrics.items():
        row = {
            "model": name,
            **{c: m["overall"][c] for c in METRIC_COLUMNS},
            "n": m["overall"]["n"],
        }
        if "pairs" in m:
            row["pair_accuracy"] = m["pairs"]["pair_accuracy"]
            row["pairs"] = m["pairs"]["pairs"]
        rows.append(row)
    return rows


def read_pairs(layout, data: TrainingData, store) -> tuple[TrainingData, dict]:
    """`data` with manual_labels' pairs joined (none when the file is absent), and their
    counts for the metadata."""
    path = pairs_path(layout)
    if not path.is_file():
        return data, {}
    frame = pl.read_parquet(path)
    pool = pl.read_parquet(pool_path(layout), columns=["post_key", "site", "image_key"])
    joined = join_pairs(frame, data, pool, store.lookup)
    pairs = joined.pairs
    counts = {
        "pairs": joined.rows,
        "pairs_used": len(pairs),
        "pairs_without_embedding": joined.without_embedding,
        "pair_ties": pairs.summary()["ties"],
        "pair_only_posts": len(pairs.post_keys),
    }
    return replace(data, pairs=pairs), counts


def pairs_metadata(report: dict | None) -> dict:
    if not report:
        return {}
    accuracy = report["accuracy"]
    metadata = {
        "pairs_held_out": report["held_out"],
        "pairs_across_folds": report["across_folds"],
        "pair_ties_left_out": accuracy["head"]["ties_left_out"],
        "pair_labelers": len(report["labelers"]),
        "pair_accuracy": markdown_table(
            [{"model": name, **figures} for name, figures in accuracy.items()]
        ),
        "pair_folds": markdown_table(report["folds"]),
    }
    for name in ("head", "ridge"):
        metadata[f"{name}_pair_accuracy"] = float(accuracy[name]["pair_accuracy"])
    return metadata


def breakdown_table(cv_metrics: dict, by: str) -> list[dict]:
    """The head's metrics per group, ridge's Spearman beside them."""
    ridge = cv_metrics["ridge"][by]
    return [
        {
            by.removeprefix("by_"): group,
            "n": m["n"],
            "spearman": m["spearman"],
            "ridge_spearman": ridge.get(group, {}).get("spearman", float("nan")),
            "pairwise_accuracy": m["pairwise_accuracy"],
            "mae": m["mae"],
        }
        for group, m in cv_metrics["head"][by].items()
    ]


@dg.asset(
    deps=[manual_labels, embeddings],
    group_name="model",
    kinds={"pytorch", "safetensors"},
    owners=["team:curation"],
    code_version="1",
)
def aesthetic_head(
    context: dg.AssetExecutionContext, scoretag: ScoretagResource, backbone: BackboneResource
) -> dg.MaterializeResult:
    """A quality head on the active backbone's embeddings (label 1 -> 0, 5 -> 1), trained on
    ratings, human pairs or both ([head] train_on), with K-fold metrics (and accuracy on
    held-out pairs) beside the constant predictor, ridge and an imported LAION head; it
    becomes active only if it passes the quality gate (see the blocking check)."""
    profile = scoretag.load()
    layout, settings = profile.layout, profile.settings.head
    labels_file = labels_path(layout)
    if labels_file.is_file():
        labels = pl.read_parquet(labels_file)
    elif settings.train_on == "pairs" and pairs_path(layout).is_file():
        labels = pl.DataFrame(schema=LABELS)
    else:
        raise dg.Failure(f"no manual_labels at {labels_file}: materialize manual_labels first")
    store = store_for(layout, backbone)
    keys, vectors = store.lookup(labels["image_key"])
    pool = pl.read_parquet(pool_path(layout), columns=["post_key", "rating"])
    joined = join_labels(labels, pool, keys, vectors)
    data, pair_counts = read_pairs(layout, joined.data, store)
    judgments = {
        "ratings": len(data),
        "pairs": pair_counts.get("pairs_used", 0),
        "both": len(data) + pair_counts.get("pairs_used", 0),
    }[settings.train_on]
    if judgments < settings.min_labels:
        what = (
            "labelled posts"
            if settings.train_on == "ratings"
            else f"judgments ({settings.train_on})"
        )
        raise dg.Failure(
            f"{judgments} {what} have embeddings; a head needs at least "
            f"{settings.min_labels} ([head] min_labels)"
        )
    heads = registry(layout)
    imported = imported_heads(heads, store.identity)
    config = train_settings(settings)
    started = time.perf_counter()
    cv = cross_validate(data, config, imported, lambda f: context.log.info(f"fold {f + 1} done"))
    net = fit_final(data, config, cv)
    # a transform's knots travel on the card: Head.predict decodes the network's scores
    transform = final_transform(data, config).to_dict()
    seconds = time.perf_counter() - started
    cv_metrics = cv.metrics(data)
    pairs_report = cv.pairs_report(data)
    curves = {name: cv.calibration(data, name) for name in cv.predictions if name != "constant"}
    card = build_card(
        net,
        backbone=asdict(store.identity),
        head_type=settings.head_type,
        hyperparameters=config.hyperparameters(),
        labels={
            "count": len(data),
            "hash": data.labels_hash(),
            # Which posts it learnt from: the gate compares a later head with this one on
            # the labels added since.
            "post_keys": sorted(str(k) for k in data.post_keys),
        },
        metrics={
            "cv": cv_metrics,
            "calibration": curves,
            "ridge_alphas": cv.ridge_alphas,
            "best_epochs": cv.best_epochs,
        },
        trained_untrained_backbone=not backbone.settings.trained,
        **({"target_transform": transform} if transform else {}),
        **({"pairs": pairs_report} if pairs_report else {}),
    )
    active, same_backbone = active_head(heads, store.identity)
    head = heads.save(net, card)
    versus = compare(
        active,
        labels=data.labels,
        post_keys=data.post_keys,
        X=data.X,
        new_oof=cv.predictions["head"],
        new_cv_spearman=cv_metrics["head"]["overall"]["spearman"],
        min_fresh_labels=settings.min_fresh_labels,
        new_version=head.version,
        same_backbone=same_backbone,
    )
    decision = decide(
        cv_metrics, settings.min_spearman, settings.ridge_margin, versus, settings.active_margin
    )
    previous = heads.active_version()
    if decision.passed:
        heads.activate(head.version, f"passed the gate: {decision.reason}", by="gate")
        context.log.info(f"head {head.version} is active: {decision.reason}")
    else:
        context.log.warning(f"head {head.version} not activated: {decision.reason}")
    record = {
        "version": head.version,
        "head_type": settings.head_type,
        "labels": len(data),
        "gate": decision.to_dict(),
        "previous": previous,
        "decided_at": datetime.now(UTC).isoformat(),
    }
    heads.record_gate(record)
    write_bytes(last_training_path(layout), json.dumps(record, indent=2).encode())
    metadata = {
        "version": head.version,
        "head_type": settings.head_type,
        "active_version": heads.active_version() or "none",
        "gate": decision.reason,
        "gate_passed": decision.passed,
        "labels": joined.labels,
        "labels_used": len(data),
        "labels_without_embedding": joined.without_embedding.height,
        "train_on": settings.train_on,
        "target_transform": settings.target_transform,
        **pair_counts,
        **pairs_metadata(pairs_report),
        "cv_folds": settings.folds,
        "cv_spearman": cv_metrics["head"]["overall"]["spearman"],
        "ridge_spearman": cv_metrics["ridge"]["overall"]["spearman"],
        **gate_metadata(record),
        "metrics": markdown_table(metrics_table(cv_metrics)),
        "by_site": markdown_table(breakdown_table(cv_metrics, "by_site")),
        "by_rating": markdown_table(breakdown_table(cv_metrics, "by_rating")),
        "calibration": markdown_image(
            calibration_png(curves, "mean out-of-fold prediction per label"), "calibration"
        ),
        "train_seconds": round(seconds, 2),
        "head_dir": dg.MetadataValue.path(str(heads.path(head.version))),
    }
    if not backbone.settings.trained:
        metadata["quality_signal"] = "none: trained on an untrained (random) backbone"
    return dg.MaterializeResult(metadata=metadata)
