"""The JSON API in process: next, labels, undo, progress, stats, and what it refuses."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest

from assets.labels.queue import MIN_GAP
from tests.labels.conftest import client_for, pool_frame, store_events


def label(api, key, value, labeler="ann"):
    return api.post("/api/labels", json={"post_key": key, "labeler": labeler, "value": value})


def test_next_label_undo_stats_round_trip(api, home):
    first = api.get("/api/next", params={"labeler": "ann"}).json()
    assert set(first) >= {"post_key", "image_url", "site", "post_id", "stratum", "post_url"}
    assert "repeat" not in first
    assert first["image_url"] == f"/images/{first['post_key']}"
    assert str(first["post_id"]) in first["post_url"]
    assert api.get(first["image_url"]).headers["content-type"].startswith("image/")

    assert label(api, first["post_key"], 4).json()["ok"] is True
    second = api.get("/api/next", params={"labeler": "ann"}).json()
    assert second["post_key"] != first["post_key"]
    assert label(api, second["post_key"], "skip").status_code == 200

    undone = api.post("/api/undo", json={"labeler": "ann"}).json()
    assert undone["undone"]["post_key"] == second["post_key"]
    assert undone["item"]["post_key"] == second["post_key"]
    assert api.get("/api/next", params={"labeler": "ann"}).json() == second

    progress = api.get("/api/progress", params={"labeler": "ann"}).json()
    assert (progress["labeled"], progress["skipped"], progress["total"]) == (1, 0, 600)
    stats = api.get("/api/stats").json()
    assert stats["labelers"][0] | {"last_at": None} == {
        "labeler": "ann",
        "labels": 1,
        "posts": 1,
        "repeats": 0,
        "skips": 0,
        "undos": 1,
        "last_at": None,
    }
    assert [row["count"] for row in stats["distribution"]] == [0, 0, 0, 1, 0]
    events = store_events(home)
    assert events["kind"].to_list() == ["label", "skip", "undo"]
    assert events["value"].to_list()[:1] == [4]


def test_exclude_skips_what_the_client_holds(api):
    held = [api.get("/api/next", params={"labeler": "bo"}).json()["post_key"]]
    for _ in range(3):
        query = {"labeler": "bo", "exclude": ",".join(held)}
        held.append(api.get("/api/next", params=query).json()["post_key"])
    assert len(set(held)) == 4


def test_labelers_share_one_order(api):
    def first_five(labeler):
        keys = []
        for _ in range(5):
            keys.append(api.get("/api/next", params={"labeler": labeler}).json()["post_key"])
            label(api, keys[-1], 3, labeler)
        return keys

    assert first_five("ann") == first_five("bob")


def test_repeats_are_about_five_percent_and_never_recent(home):
    with client_for(home, rng_seed=1, repeat_share=0.05) as api:
        given: list[str] = []
        repeats = 0
        for n in range(400):
            key = api.get("/api/next", params={"labeler": "cy"}).json()["post_key"]
            if key in given:
                repeats += 1
                last = len(given) - 1 - given[::-1].index(key)
                assert n - last > MIN_GAP, f"{key} repeated {n - last} labels after its rating"
            given.append(key)
            assert label(api, key, 1 + n % 5, "cy").status_code == 200
        consistency = api.get("/api/stats").json()["self_consistency"][0]
    assert 0.02 <= repeats / 400 <= 0.09, repeats
    assert max(Counter(given).values()) == 2  # the least repeated posts come back first
    assert consistency["repeats"] == repeats
    assert consistency["same"] == sum(  # labels cycle 1..5, so a repeat n labels on agrees
        1 for n, key in enumerate(given) if given.index(key) < n and (n - given.index(key)) % 5 == 0
    )


def test_when_nothing_is_left_next_says_done_until_a_round_is_added(tmp_path, demo_images):
    from tests.labels.conftest import make_home

    home = make_home(tmp_path, demo_images, size=12)
    with client_for(home, repeat_share=0.0) as api:
        for _ in range(12):
            label(api, api.get("/api/next", params={"labeler": "di"}).json()["post_key"], 2, "di")
        assert api.get("/api/next", params={"labeler": "di"}).json() == {"done": True}

        later = pl.when(pl.int_range(pl.len()) < 12).then(1).otherwise(2).cast(pl.Int32)
        pool = pool_frame(demo_images[1], 20).with_columns(round=later)
        pool.write_parquet(home / "data" / "rating_pool" / "pool.parquet")
        item = api.get("/api/next", params={"labeler": "di"}).json()
        assert item["round"] == 2
        assert api.get("/api/health").json()["pool"] == 20


@pytest.mark.parametrize(
    "method, path, payload, status, message",
    [
        ("get", "/api/next", {}, 422, "labeler is missing"),
        ("get", "/api/next", {"labeler": "  "}, 422, "labeler is missing"),
        ("get", "/api/progress", {}, 422, "labeler is missing"),
        (
            "post",
            "/api/labels",
            {"post_key": "danbooru:1", "labeler": "a", "value": 3},
            404,
            "unknown post_key",
        ),
        ("post", "/api/labels", {"post_key": "KEY", "labeler": "a", "value": 0}, 422, "1 to 5"),
        ("post", "/api/labels", {"post_key": "KEY", "labeler": "a", "value": 6}, 422, "1 to 5"),
        ("post", "/api/labels", {"post_key": "KEY", "labeler": "a", "value": "x"}, 422, "1 to 5"),
        ("post", "/api/labels", {"post_key": "KEY", "labeler": "a", "value": 2.5}, 422, "1 to 5"),
        ("post", "/api/labels", {"post_key": "KEY", "labeler": "a", "value": True}, 422, "1 to 5"),
        ("post", "/api/labels", {"post_key": "KEY", "labeler": "a"}, 422, "value is missing"),
        ("post", "/api/labels", {"post_key": "KEY", "value": 3}, 422, "labeler is missing"),
        ("post", "/api/labels", {"labeler": "a", "value": 3}, 422, "post_key is missing"),
        ("post", "/api/labels", [1, 2], 400, "JSON object"),
        ("post", "/api/undo", {"labeler": "nobody"}, 409, "nothing to undo"),
        ("post", "/api/undo", {}, 422, "labeler is missing"),
        ("get", "/api/nothing", {}, 404, "Not Found"),
        ("get", "/api/labels", {}, 405, "Method Not Allowed"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(api, method, path, payload, status, message):
    if isinstance(payload, dict) and payload.get("post_key") == "KEY":
        key = api.get("/api/next", params={"labeler": "a"}).json()["post_key"]
        payload = {**payload, "post_key": key}
    response = api.get(path, params=payload) if method == "get" else api.post(path, json=payload)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_bad_json_and_wrong_content_type(api):
    headers = {"Content-Type": "application/json"}
    response = api.post("/api/labels", content=b"{not json", headers=headers)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    form = api.post("/api/labels", data={"post_key": "x", "labeler": "a", "value": "3"})
    assert form.status_code == 415 and "application/json" in form.json()["error"]


def test_a_label_retried_with_its_request_id_is_stored_once(api, home):
    key = api.get("/api/next", params={"labeler": "ann"}).json()["post_key"]
    body = {"post_key": key, "labeler": "ann", "value": 3, "request_id": "9f1c"}
    first = api.post("/api/labels", json=body).json()
    again = api.post("/api/labels", json=body).json()
    assert first["id"] == again["id"]
    assert store_events(home).height == 1
    too_long = {**body, "request_id": "x" * 65}
    assert api.post("/api/labels", json=too_long).status_code == 422


def test_events_record_the_client_address(api, home):
    key = api.get("/api/next", params={"labeler": "ann"}).json()["post_key"]
    api.post("/api/labels", json={"post_key": key, "labeler": "ann", "value": 2, "client": "tab-1"})
    api.post("/api/undo", json={"labeler": "ann"})
    clients = store_events(home)["client"].to_list()
    assert clients[0] == "testclient tab-1" and clients[1] == "testclient"
