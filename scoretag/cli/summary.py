"""The summaries `scoretag run` and `scoretag demo run` print."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import polars as pl
from rich.markup import escape
from rich.table import Table

from orchestration import objectstore
from orchestration.profile import Profile
from scoretag.cli.common import console

if TYPE_CHECKING:
    from orchestration.runner import RunOutcome
    from scoretag.demo.build import DemoBuild

UNTRAINED_NOTE = (
    "The {model} backbone of this profile is randomly initialised (untrained): "
    "its embeddings, and any aesthetic score computed from them, carry no quality signal."
)


def print_runs(outcome: RunOutcome) -> None:
    status = "[green]all succeeded[/]" if outcome.success else "[red]some failed[/]"
    console.print(
        f"\n[bold]Runs[/]: {len(outcome.run_ids)} ({status}); "
        f"{len(outcome.materializations)} materializations",
        soft_wrap=True,
    )
    for failure in outcome.failures:
        console.print(f"[red]failed[/] {escape(failure)}", soft_wrap=True)
    _print_checks(outcome.checks)


def _print_checks(checks: list[dict]) -> None:
    if not checks:
        return
    per_check: dict[tuple[str, str], Counter] = {}
    for check in checks:
        verdict = "passed" if check["passed"] else check["severity"].lower()
        per_check.setdefault((check["asset"], check["check"]), Counter())[verdict] += 1
    passed = sum(c["passed"] for c in checks)
    table = Table(
        "asset",
        "check",
        "passed",
        "warned",
        "failed",
        title=f"Checks: {passed} of {len(checks)} evaluations passed",
        title_justify="left",
    )
    for (asset, name), counts in sorted(per_check.items()):
        table.add_row(asset, name, str(counts["passed"]), str(counts["warn"]), str(counts["error"]))
    console.print(table)
    for check in checks:
        if not check["passed"]:
            where = f" [{check['partition']}]" if check.get("partition") else ""
            console.print(
                escape(f"  {check['asset']}.{check['check']}{where}: {check['description']}"),
                soft_wrap=True,
            )


def print_ingest(profile: Profile) -> None:
    from assets.ingest.paths import table_files

    layout = profile.layout
    table = Table(
        "site",
        "files",
        "posts",
        "quarantined",
        "skipped",
        title="raw_posts (every ingested file)",
        title_justify="left",
    )
    tables = {name: table_files(layout, name) for name in ("posts", "quarantine", "skipped")}
    for site in sorted({p.parent.name for p in tables["posts"]}):
        counts = [
            objectstore.parquet_rows([p for p in tables[t] if p.parent.name == site])
            for t in tables
        ]
        files = sum(p.parent.name == site for p in tables["posts"])
        table.add_row(site, str(files), *(f"{c:,}" for c in counts))
    console.print(table)


def print_normalized(profile: Profile) -> None:
    from assets.normalize.assets import read_scores

    frame = read_scores(profile.layout, ["site", "norm_score", "provisional"])
    if frame.height == 0:
        return
    sites = sorted(set(frame["site"]))
    table = Table(
        "", *sites, title="normalized_scores: norm_score deciles per site", title_justify="left"
    )
    groups = {site: frame.filter(pl.col("site") == site) for site in sites}
    table.add_row("posts", *(f"{g.height:,}" for g in groups.values()))
    table.add_row("provisional", *(f"{g['provisional'].sum():,}" for g in groups.values()))
    for decile in range(1, 10):
        table.add_row(f"p{decile * 10}", *(_quantile(g, decile / 10) for g in groups.values()))
    console.print(table)
    if frame["norm_score"].null_count():
        console.print(
            f"  {frame['norm_score'].null_count():,} posts have no norm_score yet (shown as -): "
            "too young or deleted, with no mature posts of their cohort to rank them against",
            soft_wrap=True,
        )


def _quantile(group: pl.DataFrame, q: float) -> str:
    """A quantile of the group's norm_score, or "-" where no post has one yet (every post
    too young for its cohort to have mature posts)."""
    value = group["norm_score"].quantile(q)
    return "-" if value is None else f"{value:.2f}"


def _counted(values: pl.Series) -> str:
    """ "a 3, b 1": each value with how often it occurs, the most frequent first."""
    return ", ".join(f"{value} {n}" for value, n in values.value_counts(sort=True).iter_rows())


def print_pool(profile: Profile) -> None:
    from assets.pool.paths import pool_path

    path = pool_path(profile.layout)
    if not path.is_file():
        return
    pool = pl.read_parquet(path, columns=["site", "style", "round", "stratum"])
    styles = _counted(pool["style"])
    console.print(
        f"[bold]rating_pool[/]: {pool.height} posts in {pool['stratum'].n_unique()} "
        f"strata, {pool['round'].n_unique()} round(s); styles: {styles}",
        soft_wrap=True,
    )


def print_labels(profile: Profile) -> None:
    from assets.labels import stats
    from assets.labels.assets import read_events

    events = read_events(profile.layout)
    if events.height == 0:
        console.print("[bold]manual_labels[/]: no labels yet (`scoretag label serve`)")
        return
    counts = stats.per_labeler(events).join(
        stats.self_consistency(events), on="labeler", how="left", suffix="_r"
    )
    table = Table(
        "labeler",
        "labels",
        "posts",
        "skips",
        "repeats",
        "same on repeat",
        title="manual_labels: labelers",
        title_justify="left",
    )
    for row in counts.iter_rows(named=True):
        same = "" if row["same_share"] is None else f"{row['same_share']:.0%}"
        table.add_row(
            row["labeler"],
            str(row["labels"]),
            str(row["posts"]),
            str(row["skips"]),
            str(row["repeats"]),
            same,
        )
    console.print(table)
    for row in stats.agreement(events).iter_rows(named=True):
        kappa = "n/a" if row["kappa"] is None else f"{row['kappa']:.2f}"
        console.print(
            f"  agreement {row['labeler_a']} / {row['labeler_b']}: "
            f"{row['exact_share']:.0%} exact, quadratic kappa {kappa} "
            f"on {row['shared']} shared posts",
            soft_wrap=True,
        )


def demo_data_table(build: DemoBuild) -> Table:
    table = Table(
        "site",
        "source",
        "files",
        "post records",
        "bad records",
        "bytes",
        title=f"Demo data (seed {build.manifest['seed']}, built in {build.seconds:.1f} s)",
        title_justify="left",
    )
    rows: dict[tuple[str, str], Counter] = {}
    for entry in build.manifest["files"]:
        if entry["kind"] == "image":
            continue
        counter = rows.setdefault((entry["site"], entry["kind"]), Counter())
        counter.update(
            files=1, records=entry["records"], skipped=entry["skipped"], bytes=entry["bytes"]
        )
    for (site, kind), c in sorted(rows.items()):
        table.add_row(
            site, kind, str(c["files"]), f"{c['records']:,}", str(c["skipped"]), f"{c['bytes']:,}"
        )
    return table


def image_line(build: DemoBuild) -> str:
    images = build.images
    formats = Counter(images["file_ext"].to_list())
    special = Counter(s for s in images["special"].to_list() if s)
    unusable = int((~images["usable"]).sum())
    return (
        f"{images.height} images ({', '.join(f'{k} {v}' for k, v in sorted(formats.items()))});"
        f" unusual on purpose: {', '.join(f'{k} {v}' for k, v in sorted(special.items()))};"
        f" {unusable} unusable (huge or corrupt)"
    )


def print_embeddings(profile: Profile) -> None:
    from assets.embeddings.assets import store_for
    from orchestration.resources import BackboneResource

    store = store_for(profile.layout, BackboneResource.from_settings(profile.settings.backbone))
    shards = store.shards()
    if not shards:
        return
    listed = _counted(store.failures()["reason"]) or "none"
    console.print(
        f"[bold]embeddings[/]: {objectstore.parquet_rows(shards):,} images in {len(shards)} shards "
        f"({store.identity.id}, {store.identity.embed_dim} dims); failures: {listed}",
        soft_wrap=True,
    )


def print_head(profile: Profile) -> None:
    import json

    from assets.head.assets import METRIC_COLUMNS
    from assets.head.paths import last_training_path, registry

    path = last_training_path(profile.layout)
    if not path.is_file():
        return
    record = json.loads(path.read_text())
    heads = registry(profile.layout)
    card = heads.load(record["version"]).card
    cv = card["metrics"]["cv"]
    table = Table(
        "model",
        "n",
        *METRIC_COLUMNS,
        title=f"aesthetic_head {record['version']} ({card['head_type']}): "
        f"{card['hyperparameters']['folds']}-fold cross-validation",
        title_justify="left",
    )
    for name, report in cv.items():
        overall = report["overall"]
        table.add_row(name, str(overall["n"]), *(f"{overall[c]:.3f}" for c in METRIC_COLUMNS))
    console.print(table)
    gate = record["gate"]
    verdict = "passed" if gate["passed"] else "failed"
    console.print(
        f"  gate {verdict}: {gate['reason']}; active head: {heads.active_version() or 'none'}",
        soft_wrap=True,
    )
    if card.get("trained_untrained_backbone"):
        console.print(
            "  [yellow]trained on an untrained backbone's embeddings: these metrics measure "
            "no quality signal[/]",
            soft_wrap=True,
        )


def print_catalog(profile: Profile) -> None:
    """The catalog's score buckets per site, and one named query, as a user would run them."""
    import polars as pl

    from assets.catalog.queries import bind, connect_read_only, load_queries, run

    if not profile.layout.catalog.is_file():
        return
    queries = load_queries()
    with connect_read_only(profile.layout.catalog) as con:
        buckets = pl.from_arrow(run(con, queries["bucket_distribution"].sql, {}))
        top = queries["top_posts"]
        best = pl.from_arrow(run(con, top.sql, bind(top, {"limit": "2"})))
    if buckets.height == 0:
        return
    columns = [f"score_{i}" for i in range(1, 10)]
    per_site = buckets.group_by("site").agg(pl.col(columns).sum()).sort("site")
    table = Table(
        "site",
        *(c.removeprefix("score_") for c in columns),
        title="scored_catalog: posts per score bucket (`scoretag query bucket_distribution`)",
        title_justify="left",
    )
    for row in per_site.iter_rows(named=True):
        table.add_row(row["site"], *(str(row[c]) for c in columns))
    console.print(table)
    console.print("[bold]`scoretag query top_posts --param limit=2`[/]:")
    for row in best.iter_rows(named=True):
        console.print(
            f"  {row['post_key']:<22} {row['rating']}  score {row['aesthetic_score']:.3f}  "
            f"norm_score {row['norm_score']:.3f}",
            soft_wrap=True,
        )
    if best.height and _untrained_head(profile):
        console.print(
            "  [yellow]scores from a head on an untrained backbone: no quality signal[/]",
            soft_wrap=True,
        )


def print_captions(profile: Profile) -> None:
    """Each export: posts, shards, calibration; then three captions of the first, and of
    the first in each other vocabulary."""
    from assets.captions.paths import made_exports

    settings = profile.settings.captions
    shown: dict[str, tuple] = {}
    made = made_exports(profile.layout, settings.formats, settings.also_styles)
    for name, (folder, manifest) in made.items():
        calibration = manifest["calibration"]
        console.print(
            f"[bold]caption_shards[/] ({name}): {manifest['rows']:,} posts in "
            f"{len(manifest['shards'])} shard(s), style {manifest['caption']['style']}, "
            f"head {manifest['head_version']} calibrated by {calibration['policy']}; "
            f"{folder / 'manifest.json'}",
            soft_wrap=True,
        )
        shown.setdefault(manifest["caption"]["style"], (folder, manifest))
    for style, (folder, manifest) in shown.items():
        _print_examples(style, folder, manifest)


def _print_examples(style: str, folder, manifest: dict) -> None:
    from assets.captions.verify import read_export

    if not manifest["shards"]:
        return
    rows = read_export(folder, manifest).sort("bucket", descending=True, nulls_last=True)
    console.print(f"  three captions in the {style} style, best bucket first:")
    for caption in rows.gather_every(max(1, rows.height // 3)).head(3)["caption"]:
        console.print(f"  {escape(caption)}", soft_wrap=True)
    if "quality_signal" in manifest:
        console.print(
            "  [yellow]scores from a head on an untrained backbone: no quality signal, so "
            "tags drawn from the head's scores mean nothing yet[/]",
            soft_wrap=True,
        )


def _untrained_head(profile: Profile) -> bool:
    from assets.head.paths import registry

    heads = registry(profile.layout)
    active = heads.active_version()
    return active is not None and bool(heads.load(active).card.get("trained_untrained_backbone"))


def print_where(profile: Profile) -> None:
    layout = profile.layout
    places = {
        "raw dumps": layout.inbox,
        "images": layout.images,
        "stage data": layout.data,
        "catalog": layout.catalog,
        "dagster home": layout.dagster_home,
    }
    if profile.settings.demo is not None:
        places["demo ground truth"] = layout.demo
    console.print("[bold]Where things are[/]")
    for label, path in places.items():
        # soft_wrap: a path is copied from the terminal, so it is never broken by a newline
        console.print(escape(f"  {label:<18} {path}"), soft_wrap=True)
    backbone = profile.settings.backbone
    if not backbone.trained:
        console.print(f"[yellow]{UNTRAINED_NOTE.format(model=backbone.model)}[/]")
    console.print(
        "Open the UI: [bold]make ui[/] (or `scoretag --profile "
        f"{profile.name} ui`), then http://127.0.0.1:3000/asset-groups",
        soft_wrap=True,
    )


def missing(profile: Profile) -> list[str]:
    """What the lineage has not made yet, each with why and what to do, in lineage order:
    what a first run on little data (or before anyone labels) is missing."""
    from assets.catalog.queries import connect_read_only
    from assets.embeddings.assets import store_for
    from assets.head.paths import registry
    from assets.ingest.paths import posts_files
    from assets.labels.paths import labels_path
    from assets.normalize.assets import read_scores
    from assets.pool.paths import pool_path
    from orchestration.resources import BackboneResource

    layout, settings = profile.layout, profile.settings
    posts = objectstore.parquet_rows(posts_files(layout))
    if posts == 0:
        return [
            f"no posts: nothing ingested yet. Copy dumps into {layout.inbox}/<site>/, or run "
            "`scoretag ingest FILE...`"
        ]
    notes = []
    norm = read_scores(layout, ["norm_score", "immature"])
    if norm.height:
        unranked = norm["norm_score"].null_count()
        if unranked:
            notes.append(
                f"no norm_score for {unranked:,} of {norm.height:,} posts: younger than "
                f"[normalize] maturity_days ({settings.normalize.maturity_days}) when their "
                f"file was taken ({int(norm['immature'].sum()):,} are) or deleted, with no "
                "mature post of their cohort to rank them against; the rating pool draws "
                "mature posts only"
            )
    store = store_for(layout, BackboneResource.from_settings(settings.backbone))
    shards = store.shards()
    if not shards:
        failed = _counted(store.failures()["reason"])
        notes.append(
            f"no embeddings: no image of the {posts:,} posts was embedded"
            + (f" ({failed})" if failed else "")
            + f". Put the images under {layout.images} as <md5>.<ext>, or list them in "
            "[embed] image_index"
        )
    pool = pool_path(layout)
    if pool.is_file() and pl.read_parquet(pool, columns=["post_key"]).height == 0:
        notes.append(
            "the rating pool is empty: it draws live, mature, canonical posts whose image file "
            "is under the image root"
        )
    heads = registry(layout)
    labels = labels_path(layout)
    labelled = 0
    if labels.is_file() and shards:
        keys = pl.read_parquet(labels, columns=["image_key"])["image_key"].unique()
        labelled = len(store.lookup(keys)[0])
    needed = settings.head.min_labels
    active = heads.active_version()
    if labelled < needed:
        notes.append(
            f"no head trained: {labelled} of [head] min_labels ({needed}) labelled posts have "
            "embeddings. Label the pool (`scoretag label serve`)"
            + (
                f"; meanwhile the active head {active} scores the catalog"
                if active
                else ", or score before labelling: `scoretag head import-laion FILE --out "
                "DIR`, `scoretag head activate VERSION`, `scoretag run --job catalog`"
            )
        )
    if active is None:
        notes.append(
            "catalog not scored: no active head (train one, or activate an imported one with "
            "`scoretag head activate VERSION`)"
        )
        return notes
    scored = 0
    if layout.catalog.is_file():
        with connect_read_only(layout.catalog) as con:
            row = con.execute(
                "SELECT count(*) FROM scores WHERE head_version = ?", [active]
            ).fetchone()
            scored = int(row[0]) if row else 0
    if scored == 0:
        why = "`scoretag run --job catalog` scores it" if shards else "nothing is embedded yet"
        notes.append(f"catalog not scored under the active head {active}: {why}")
    return notes


def print_missing(profile: Profile) -> None:
    notes = missing(profile)
    if not notes:
        return
    console.print("\n[bold]Not made yet[/]")
    for note in notes:
        console.print(escape(f"  - {note}"), soft_wrap=True)


def print_pipeline(profile: Profile, outcome: RunOutcome) -> None:
    """Everything the pipeline produced, stage by stage, then the runs and their checks,
    then what is missing and why."""
    print_ingest(profile)
    print_normalized(profile)
    print_pool(profile)
    print_labels(profile)
    print_embeddings(profile)
    print_head(profile)
    print_catalog(profile)
    print_captions(profile)
    print_runs(outcome)
    print_missing(profile)
