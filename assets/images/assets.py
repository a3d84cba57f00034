"""image_files: the missing images downloaded (opt-in); image_index: where every image's
bytes are, refreshed from what changed since the last scan."""

import time

import dagster as dg

from assets.images.download import download, pending
from assets.images.fetch import Outcome
from assets.images.find import load_index, scan
from assets.images.index import ENTRY
from assets.images.paths import index_dir
from assets.images.quarantine import quarantine_dir, summary
from assets.images.summary import by_source, without_image
from assets.ingest.assets import raw_posts
from assets.ingest.current import current_posts
from assets.ingest.paths import posts_files
from orchestration.plots import column_schema, markdown_table
from orchestration.pools import NETWORK
from orchestration.resources import ScoretagResource

POST_COLUMNS = ["md5", "sha512", "file_ext"]


def _by_reason(counts: dict[str, int]) -> dg.MetadataValue:
    return markdown_table([{"reason": r, "posts": n} for r, n in counts.items()])


@dg.asset(
    deps=[raw_posts],
    group_name="ingest",
    kinds={"httpx"},
    owners=["team:curation"],
    code_version="1",
    pool=NETWORK,
)
def image_files(
    context: dg.AssetExecutionContext, scoretag: ScoretagResource
) -> dg.MaterializeResult:
    """The images the posts point at and no source holds, downloaded into
    `<image root>/fetched/`, each checked against its post's md5 (Philomena: sha512); the
    failures go to the fetch quarantine with their reason. Off unless `[images] fetch`."""
    profile = scoretag.load()
    layout, settings = profile.layout, profile.settings
    if not settings.images.fetch:
        context.log.info("[images] fetch is off: nothing downloaded")
        return dg.MaterializeResult(metadata={"enabled": False})
    todo = pending(layout, settings)
    total = todo.urls.height
    context.log.info(f"{total} images to fetch; left out: {todo.left_out}")
    done = [0]

    def on_outcome(outcome: Outcome) -> None:
        done[0] += 1
        if done[0] % max(1, total // 10) == 0:
            context.log.info(f"{done[0]} of {total} images done")

    started = time.monotonic()
    counts = summary(download(layout, settings.images, todo.urls, on_outcome))
    return dg.MaterializeResult(
        metadata={
            "enabled": True,
            "fetched": counts["fetched"],
            "skipped": counts["skipped"],
            "failed": counts["failed"],
            "failed_by_reason": _by_reason(counts["failed_by_reason"]),
            "left_out": _by_reason(todo.left_out),
            "bytes": counts["bytes"],
            "seconds": round(time.monotonic() - started, 3),
            "quarantine": dg.MetadataValue.path(str(quarantine_dir(layout))),
        }
    )


@dg.asset(
    deps=[raw_posts, image_files],
    group_name="ingest",
    kinds={"polars", "parquet"},
    owners=["team:curation"],
    code_version="1",
    metadata=column_schema(ENTRY),
)
def image_index(
    context: dg.AssetExecutionContext, scoretag: ScoretagResource
) -> dg.MaterializeResult:
    """Every image the profile's `[images] sources` hold (loose files named by md5 or
    sha512, tar shards keyed by name, sidecar or bytes, post-id tars, index files), with
    where its bytes are. Lists again only folders whose mtime changed, reads again only tar
    shards and index files whose size or mtime changed."""
    profile = scoretag.load()
    layout, settings = profile.layout, profile.settings
    posts = current_posts(posts_files(layout), POST_COLUMNS)
    report = scan(layout, settings, posts)
    entries = load_index(layout, settings)
    missing = without_image(posts, entries, settings.pool.non_image_exts)
    context.log.info(
        f"{entries.height} images; re-listed {report.folders_listed} of {report.folders} "
        f"folders, re-read {report.tars_read} of {report.tars} tar shards in "
        f"{report.seconds:.2f} s"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": entries.height,
            "images_by_source": markdown_table(by_source(entries).to_dicts()),
            "posts_without_image": int(missing["posts"].sum()),
            "posts_without_image_by_site": markdown_table(missing.to_dicts()),
            "scan_seconds": round(report.seconds, 3),
            "folders": report.folders,
            "folders_listed": report.folders_listed,
            "tars": report.tars,
            "tars_read": report.tars_read,
            "index_files_read": report.listings_read,
            "files_hashed": report.files_hashed,
            "changed": markdown_table([{"re-read": c} for c in report.changed[:20]]),
            "path": dg.MetadataValue.path(str(index_dir(layout))),
        }
    )
