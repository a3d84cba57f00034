"""raw_posts: one dynamic partition per raw file dropped into `$SCORETAG_HOME/inbox/<site>/`."""

from collections import Counter

import dagster as dg
import polars as pl

from assets.ingest.formats import ReadOptions, UnknownFormat
from assets.ingest.paths import RawFile, signature
from assets.ingest.reader import FileReport, QuarantineExceeded, ingest_file
from assets.ingest.schema import POSTS
from assets.ingest.supersede import Superseded, export_set, retire, superseded_files
from orchestration import objectstore
from orchestration.plots import column_schema, markdown_table
from orchestration.resources import ScoretagResource
from orchestration.storage import Layout

raw_files = dg.DynamicPartitionsDefinition(name="raw_files")
TABLES = ("posts", "quarantine", "skipped")
# A run in one of these may still read its partition's files: retention leaves them alone.
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


class RawPostsConfig(dg.Config):
    """One-off overrides of the profile's [ingest] settings for this run."""

    quarantine_threshold: float | None = None
    danbooru_rating_scheme: str | None = None


def _report_metadata(report: FileReport, path) -> dict:
    return {
        "dagster/row_count": report.posts,
        "format": report.format,
        "quarantined": report.quarantined,
        "quarantined_share": report.quarantined_share,
        "skipped": report.skipped,
        "duplicates": report.duplicates,
        "quarantine_reasons": markdown_table(
            [{"reason": r, "records": n} for r, n in report.reasons.most_common(10)]
        ),
        "skip_reasons": markdown_table(
            [{"reason": r, "records": n} for r, n in _grouped(report.skip_reasons).items()]
        ),
        "file": dg.MetadataValue.path(str(path)),
    }


def _grouped(reasons: Counter) -> Counter:
    """ "duplicate of 123" and "duplicate of 456" are one kind of reason."""
    return Counter(
        r.split(" of ")[0] if r.startswith("duplicate of") else r for r in reasons.elements()
    )


def _posts_metadata(path) -> dict:
    columns = ["post_id", "rating", "score", "created_at", "tags", "url_derived"]
    frame = pl.read_parquet(path, columns=columns)
    ratings = frame["rating"].value_counts().sort("rating")
    preview = frame.head(5).drop("url_derived")
    preview = preview.with_columns(tags=pl.col("tags").list.len()).to_dicts()
    derived = frame["url_derived"]
    urls = {
        "given": int((~derived).sum()),
        "derived": int(derived.sum()),
        "none": derived.null_count(),
    }
    return {
        "ratings": markdown_table(ratings.to_dicts()),
        "preview": markdown_table(preview),
        "urls": dg.MetadataValue.json(urls),
    }


@dg.asset(
    partitions_def=raw_files,
    group_name="ingest",
    kinds={"polars", "parquet"},
    owners=["team:curation"],
    code_version="3",
    metadata=column_schema(POSTS),
)
def raw_posts(
    context: dg.AssetExecutionContext, config: RawPostsConfig, scoretag: ScoretagResource
) -> dg.MaterializeResult:
    """Every record of one raw file (partition `<site>/<file name>`) in the common schema.

    Records that cannot be read go to the file's quarantine table with a reason; stubs that
    are not posts go to its skipped table. A file whose quarantined share passes the threshold
    loads nothing. A full export supersedes the older full exports of its site (no stage reads
    them again); after a successful ingest, superseded files older than
    `[ingest] superseded_retention_days` are removed.
    """
    profile = scoretag.load()
    settings = profile.settings.ingest
    raw = RawFile.from_key(context.partition_key)
    path = raw.path(profile.layout)
    if not path.is_file():
        raise dg.Failure(
            f"raw file {path} is gone: it was removed from the inbox after its partition was "
            "added (by hand, or by retention once a newer full export superseded it)"
        )
    options = ReadOptions(
        batch_rows=settings.batch_rows,
        danbooru_rating_scheme=config.danbooru_rating_scheme or settings.danbooru_rating_scheme,
    )
    threshold = (
        config.quarantine_threshold
        if config.quarantine_threshold is not None
        else settings.quarantine_threshold
    )
    staged = [raw.staging(profile.layout, t) for t in TABLES]
    try:
        report = ingest_file(
            path, *staged, site=raw.site, options=options, threshold=threshold, source_file=raw.key
        )
    except (QuarantineExceeded, UnknownFormat) as e:
        _publish(raw, profile.layout)  # the quarantine says why
        raise dg.Failure(
            description=str(e),
            metadata={"file": dg.MetadataValue.path(str(path))},
            allow_retries=False,
        ) from None
    context.log.info(
        f"{raw.key}: {report.posts} posts, {report.quarantined} quarantined, "
        f"{report.skipped} skipped ({report.format})"
    )
    metadata = {**_report_metadata(report, path), **_posts_metadata(staged[0])}
    _publish(raw, profile.layout)
    metadata["posts_file"] = dg.MetadataValue.path(str(raw.output(profile.layout, "posts")))
    metadata.update(_retire(context, raw, report, profile.layout, settings))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(signature(path)))


def _retire(context, raw: RawFile, report: FileReport, layout: Layout, settings) -> dict:
    """What this file supersedes (or what supersedes it), then retention: superseded files
    whose superseding is older than the setting are removed. Never this run's own file (its
    checks read it next), nor one a run in progress may be reading."""
    superseded = superseded_files(layout)
    export = f"{raw.site}/{export_set(raw.name)}"
    mine = [s for s in superseded if s.by.raw.site == raw.site and s.by_export == export]
    above = next((s for s in superseded if s.file.raw == raw), None)
    stamp = report.stamp
    if mine:
        context.log.info(
            f"{raw.key} supersedes {len(mine)} older full export(s) of {raw.site}: "
            + ", ".join(s.file.raw.key for s in mine)
        )
    if above is not None:
        context.log.info(
            f"{raw.key} is superseded by {above.by_export}, a newer full export of {raw.site}: "
            "no stage reads it"
        )
    days = settings.superseded_retention_days

    def busy(key: str) -> bool:
        runs = context.instance.get_run_records(
            filters=dg.RunsFilter(statuses=UNFINISHED, tags={"dagster/partition": key}), limit=1
        )
        return bool(runs)

    removed = retire(layout, superseded, days, keep={raw.key}, busy=busy)
    for entry in removed:
        context.log.info(
            f"retention ({days} days): removed {entry.file.raw.key}, superseded by "
            f"{entry.by_export} since {entry.since:%Y-%m-%d %H:%M} UTC "
            "(its posts, quarantine and skipped tables and its raw file)"
        )
    return {
        "full_export": bool(stamp and stamp.full_export),
        "snapshot_at": str(stamp.snapshot_at) if stamp and stamp.snapshot_at else "",
        "supersedes": _rows(mine),
        "superseded_by": above.by_export if above else "",
        "retention_removed": _rows(removed),
    }


def _rows(entries: list[Superseded]) -> dg.MetadataValue:
    return markdown_table([e.row() for e in entries])


def _publish(raw: RawFile, layout: Layout) -> None:
    """With an object root, upload the tables ingestion wrote whole and drop the local copies;
    a table the run did not write (posts refused) leaves the object there as it was. Posts go
    last: once they are there, so are the quarantine and skipped tables of the same run."""
    for table in reversed(TABLES):
        staged, output = raw.staging(layout, table), raw.output(layout, table)
        if staged != output and staged.is_file():
            objectstore.upload(staged, output)
            staged.unlink()
