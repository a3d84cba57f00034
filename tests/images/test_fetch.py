"""The downloader against a real HTTP server on 127.0.0.1 serving demo images: what is stored,
what is retried, what is quarantined and why, and how politely it asks."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from assets.images.fetch import Job, Policy, fetch_all, sniff
from assets.images.quarantine import quarantine_frame, summary
from tests.images.server import ImageServer, demo_files

UA = "scoretag-tests/1.0 (by tester; tester@example.org)"
FAST = Policy(user_agent=UA, concurrency=4, retries=2, backoff_s=0.05, max_wait_s=5, timeout_s=2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return demo_files(8, tmp_path_factory.mktemp("demo_images"))


@pytest.fixture
def server():
    with ImageServer() as s:
        yield s


def job_for(file, url: str, site: str = "danbooru", post_id: int | None = None) -> Job:
    post_id = file.image_id if post_id is None else post_id
    return Job(f"{site}:{post_id}", site, url, file.md5, None, file.ext)


def run(jobs, root, policy=FAST, **kw):
    return asyncio.run(fetch_all(jobs, root, policy, **kw))


def stored_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_fetches_every_file_under_its_md5_and_sends_the_user_agent(files, server, tmp_path):
    jobs = [job_for(f, server.add(f.path, f.data)) for f in files]
    outcomes = run(jobs, tmp_path)
    assert {o.status for o in outcomes} == {"fetched"}
    for f in files:
        target = tmp_path / "danbooru" / f.md5[:2] / f"{f.md5}.{f.ext}"
        assert target.read_bytes() == f.data
    assert len(stored_files(tmp_path)) == len(files)  # no temporary file left behind
    assert {hit.user_agent for hit in server.hits} == {UA}
    assert summary(outcomes)["bytes"] == sum(len(f.data) for f in files)


def test_a_slow_response_times_out_and_is_retried(files, server, tmp_path):
    f = files[0]
    url = server.add(f.path, f.data, "slow", "ok", delay=1.5)
    policy = Policy(user_agent=UA, retries=2, backoff_s=0.05, timeout_s=0.5)
    [outcome] = run([job_for(f, url)], tmp_path, policy)
    assert (outcome.status, outcome.attempts) == ("fetched", 2)
    assert len(server.hits_of(f.path)) == 2
    assert (tmp_path / "danbooru" / f.md5[:2] / f"{f.md5}.{f.ext}").read_bytes() == f.data


def test_a_404_is_quarantined_at_once_with_its_reason(files, server, tmp_path):
    f = files[1]
    [outcome] = run([job_for(f, server.add(f.path, f.data, "404"))], tmp_path)
    assert (outcome.status, outcome.reason, outcome.http_status) == ("failed", "http 404", 404)
    assert len(server.hits_of(f.path)) == 1  # an answer for good: not asked again
    row = quarantine_frame([outcome]).row(0, named=True)
    assert (row["post_key"], row["reason"], row["http_status"]) == (
        f"danbooru:{f.image_id}",
        "http 404",
        404,
    )
    assert row["url"].endswith(f.path) and row["at"] is not None
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize("status", ["429", "503"])
def test_retry_after_is_waited_for_then_the_file_is_fetched(files, server, tmp_path, status):
    f = files[2]
    url = server.add(f.path, f.data, status, "ok", retry_after="1")
    [outcome] = run([job_for(f, url)], tmp_path)
    assert (outcome.status, outcome.attempts) == ("fetched", 2)
    first, second = server.hits_of(f.path)
    assert second.at - first.at >= 0.95  # the header asked for 1 s (backoff alone: 0.05 s)


def test_retry_after_holds_every_request_to_that_site(files, server, tmp_path):
    limited, busy, later = files[3], files[4], files[5]
    jobs = [
        job_for(limited, server.add(limited.path, limited.data, "429", "ok", retry_after="1")),
        job_for(busy, server.add(busy.path, busy.data, "slow", delay=0.3)),
        job_for(later, server.add(later.path, later.data)),
    ]
    run(jobs, tmp_path, Policy(user_agent=UA, concurrency=2, backoff_s=0.05))
    told = server.hits_of(limited.path)[0]
    [asked] = server.hits_of(later.path)  # by the other worker, once it was free (0.3 s)
    assert asked.at - told.at >= 0.95


def test_a_truncated_body_is_retried_and_never_stored(files, server, tmp_path):
    f, g = files[5], files[6]
    jobs = [
        job_for(f, server.add(f.path, f.data, "truncate")),
        job_for(g, server.add(g.path, g.data, "truncate", "ok")),
    ]
    outcomes = {o.job.md5: o for o in run(jobs, tmp_path)}
    bad = outcomes[f.md5]
    assert (bad.status, bad.reason, bad.attempts) == ("failed", "truncated body", 3)
    assert 0 < bad.bytes < len(f.data)
    assert len(server.hits_of(f.path)) == 3
    assert (outcomes[g.md5].status, outcomes[g.md5].attempts) == ("fetched", 2)
    assert stored_files(tmp_path) == [tmp_path / "danbooru" / g.md5[:2] / f"{g.md5}.{g.ext}"]


def test_a_body_that_is_another_file_is_quarantined_and_stored_nowhere(files, server, tmp_path):
    wanted, served = files[0], files[1]
    url = server.add(wanted.path, served.data)
    [outcome] = run([job_for(wanted, url)], tmp_path)
    assert (outcome.status, outcome.reason, outcome.bytes) == (
        "failed",
        "md5 mismatch",
        len(served.data),
    )
    assert len(server.hits_of(wanted.path)) == 1
    assert stored_files(tmp_path) == []  # neither under the post's md5 nor under the body's


def test_an_error_page_with_status_200_is_not_an_image(files, server, tmp_path):
    f = files[0]
    [outcome] = run([job_for(f, server.add(f.path, f.data, "html"))], tmp_path)
    assert (outcome.status, outcome.reason) == ("failed", "not an image")
    assert stored_files(tmp_path) == []


def test_philomena_files_are_checked_by_sha512_and_named_by_it(files, server, tmp_path):
    good, bad = files[0], files[1]
    site = "derpibooru"
    jobs = [
        Job(f"{site}:1", site, server.add("/1.img", good.data), None, good.sha512, "png"),
        Job(f"{site}:2", site, server.add("/2.img", good.data), None, bad.sha512, "png"),
    ]
    outcomes = {o.job.post_key: o for o in run(jobs, tmp_path)}
    assert outcomes["derpibooru:1"].status == "fetched"
    assert (outcomes["derpibooru:2"].status, outcomes["derpibooru:2"].reason) == (
        "failed",
        "sha512 mismatch",
    )
    target = tmp_path / "derpibooru" / good.sha512[:2] / f"{good.sha512}.png"
    assert stored_files(tmp_path) == [target]
    assert hashlib.sha512(target.read_bytes()).hexdigest() == good.sha512


def test_each_site_is_held_to_its_rate_limit(files, server, tmp_path):
    slow_site = [job_for(f, server.add(f.path, f.data), "e621") for f in files[:6]]
    free_site = [
        job_for(f, server.add(f"/free{f.path}", f.data), "gelbooru", 100 + i)
        for i, f in enumerate(files[:6])
    ]
    policy = Policy(user_agent=UA, concurrency=8, rate_limits={"e621": 5.0})
    outcomes = run(slow_site + free_site, tmp_path, policy)
    assert {o.status for o in outcomes} == {"fetched"}
    limited = sorted(hit.at for hit in server.hits if not hit.path.startswith("/free"))
    gaps = [b - a for a, b in zip(limited, limited[1:], strict=False)]
    # 5 requests/s: sent 0.2 s apart (unlimited, they would arrive within milliseconds);
    # arrival times at the server carry the scheduling jitter of two busy processes
    assert len(limited) == 6 and min(gaps) >= 0.1
    assert limited[-1] - limited[0] >= 0.95
    free = sorted(hit.at for hit in server.hits if hit.path.startswith("/free"))
    assert free[-1] - free[0] < 0.5  # the other site was not held back


def test_cancelled_after_k_files_a_rerun_fetches_only_the_rest(files, server, tmp_path):
    for f in files:
        server.add(f.path, f.data, "slow", delay=0.1)
    jobs = [job_for(f, server.base + f.path) for f in files]
    done: list = []

    async def until_three():
        task = asyncio.current_task()

        def on_outcome(outcome):
            done.append(outcome)
            if len(done) == 3:
                task.cancel()

        await fetch_all(jobs, tmp_path, Policy(user_agent=UA, concurrency=2), on_outcome)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(until_three())
    kept = stored_files(tmp_path)
    # Whole files only (the in-flight ones left no temporary file), each one reported.
    assert len(kept) == len(done) and 3 <= len(done) < len(files)
    # A run killed outright leaves its temporary file: the next run discards it.
    dead = tmp_path / "danbooru" / "00" / ".00000000000000000000000000000000.jpg.999999999.tmp"
    dead.parent.mkdir(parents=True, exist_ok=True)
    dead.write_bytes(b"half a file")
    asked_before = {hit.path for hit in server.hits}
    server.hits.clear()
    outcomes = run(jobs, tmp_path)
    assert [o.status for o in outcomes].count("skipped") == len(done)
    fetched_now = {hit.path for hit in server.hits}
    assert len(fetched_now) == len(files) - len(done)
    assert not fetched_now & {f.path for f in files if f.md5 in {o.job.md5 for o in done}}
    assert asked_before  # the first run had started on them
    assert not dead.exists()
    for f in files:
        path = tmp_path / "danbooru" / f.md5[:2] / f"{f.md5}.{f.ext}"
        assert hashlib.md5(path.read_bytes()).hexdigest() == f.md5


def test_sniff_knows_the_formats_the_embeddings_stage_decodes(files):
    assert {sniff(f.data[:16]) for f in files} <= {"jpg", "png", "webp"}
    assert sniff(b"<!DOCTYPE html>") is None and sniff(b"") is None
