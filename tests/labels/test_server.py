"""The server as labelers meet it: killed mid-stream, and under concurrent writers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import polars as pl

from tests.labels.conftest import Server, acknowledged_until_killed, store_events


def pool_keys(server: Server) -> list[str]:
    pool = server.home / "data" / "rating_pool" / "pool.parquet"
    return pl.read_parquet(pool, columns=["post_key"])["post_key"].to_list()


def test_every_acknowledged_label_survives_sigkill(home, serve):
    server = serve(home)
    keys = pool_keys(server)
    bodies = [{"post_key": k, "labeler": "durable", "value": 1 + hash(k) % 5} for k in keys]
    acked = [
        (b["post_key"], b["value"])
        for b in acknowledged_until_killed(server, "/api/labels", bodies)
    ]
    assert 150 <= len(acked) < len(keys), "the kill should land mid-stream"

    restarted = serve(home)
    stored = store_events(home).filter(kind="label", labeler="durable")
    assert set(acked) <= set(stored.select("post_key", "value").iter_rows())
    progress = httpx.get(f"{restarted.url}/api/progress", params={"labeler": "durable"}).json()
    assert progress["labeled"] == stored.height >= len(acked)


def test_four_clients_post_500_labels_each_at_once(home, serve):
    server = serve(home)
    keys = pool_keys(server)[:500]

    def post_all(labeler: str) -> list[int]:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            return [
                client.post(
                    "/api/labels", json={"post_key": key, "labeler": labeler, "value": 1 + i % 5}
                ).status_code
                for i, key in enumerate(keys)
            ]

    names = [f"writer{i}" for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        statuses = [s for result in pool.map(post_all, names) for s in result]
    assert statuses == [200] * 2000

    stored = store_events(home).filter(pl.col("labeler").is_in(names))
    assert stored.height == 2000
    assert stored.select("labeler", "post_key").is_unique().all()
    per = dict(stored.group_by("labeler").len().iter_rows())
    assert per == dict.fromkeys(names, 500)
    expected = {(name, key, 1 + i % 5) for name in names for i, key in enumerate(keys)}
    assert set(stored.select("labeler", "post_key", "value").iter_rows()) == expected
