"""Daily schedules, on by default and switchable in the UI: `daily_ingest` ingests every new or
changed inbox file (one `ingest` run each, embeddings included); `daily_images`, a while
later, downloads what is missing (when `[images] fetch` is on) and refreshes the image index,
after which the late-images sensor embeds the raw files with new images; `daily_rescore`
runs the incremental path (normalize, then score the posts without a score under the active
head). Between ticks the inbox sensor and the automation sensor ingest and embed as soon as a
file lands."""

import dagster as dg

from orchestration.inbox import register, stale_files
from orchestration.jobs import catalog_job, images_job, ingest_job
from orchestration.profile import Profile
from orchestration.resources import ScoretagResource
from orchestration.settings import ScheduleSettings


def _daily_ingest(cron: str, timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_ingest",
        job=ingest_job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def daily_ingest(context: dg.ScheduleEvaluationContext, scoretag: ScoretagResource):
        """Ingest every inbox file that is new or changed since it was last ingested."""
        files = stale_files(context.instance, scoretag.layout)
        if not files:
            return dg.SkipReason("the inbox holds nothing new")
        register(context.instance, files)
        tick = context.scheduled_execution_time.isoformat()
        return [dg.RunRequest(partition_key=f.key, run_key=f"{f.key}@{tick}") for f in files]

    return daily_ingest


def _daily_job(
    settings: ScheduleSettings, name: str, job, delay_minutes: int, description: str
) -> dg.ScheduleDefinition:
    """A job run every day, `delay_minutes` after the daily ingest tick."""
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=settings.cron(delay_minutes),
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )


def schedule_defs(profile: Profile) -> dg.Definitions:
    settings = profile.settings.schedule
    daily_images = _daily_job(
        settings,
        "daily_images",
        images_job,
        settings.images_after_minutes,
        "Download the images the new posts point at (when [images] fetch is on) and refresh "
        "the image index; the late-images sensor embeds what arrived.",
    )
    daily_rescore = _daily_job(
        settings,
        "daily_rescore",
        catalog_job,
        settings.rescore_after_minutes,
        "Normalize, score the posts the active head has not scored yet, and refresh the "
        "caption shards.",
    )
    daily_ingest = _daily_ingest(settings.cron(), settings.timezone)
    return dg.Definitions(schedules=[daily_ingest, daily_images, daily_rescore])
