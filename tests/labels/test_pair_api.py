"""Compare mode's JSON API: next pair, choices, undo, progress, stats; what it refuses; the
token rule; and an acknowledged choice surviving a SIGKILL of the server."""

from __future__ import annotations

import httpx
import polars as pl
import pytest

from assets.labels.store import LabelStore
from tests.labels.conftest import acknowledged_until_killed, client_for, store_events
from tests.labels.test_security import TOKEN, raw_get


def pair_events(home) -> pl.DataFrame:
    with LabelStore(home / "labels.sqlite", read_only=True) as store:
        return store.pair_events()


def choose(api, pair, choice, labeler="ann", **extra):
    body = {
        "left_key": pair["left"]["post_key"],
        "right_key": pair["right"]["post_key"],
        "labeler": labeler,
        "choice": choice,
        **extra,
    }
    return api.post("/api/pairs", json=body)


def test_next_choose_undo_progress_stats_round_trip(api, home):
    first = api.get("/api/pairs/next", params={"labeler": "ann"}).json()
    assert set(first) == {"left", "right"}
    for side in ("left", "right"):
        assert set(first[side]) >= {"post_key", "image_url", "preview_url", "stratum"}
        assert api.get(first[side]["preview_url"]).headers["content-type"].startswith("image/")
    assert choose(api, first, "left", client="tab-1").json()["ok"] is True
    query = {
        "labeler": "ann",
        "exclude": f"{first['left']['post_key']}|{first['right']['post_key']}",
    }
    second = api.get("/api/pairs/next", params=query).json()
    assert {second["left"]["post_key"], second["right"]["post_key"]} != {
        first["left"]["post_key"],
        first["right"]["post_key"],
    }
    assert choose(api, second, "tie").status_code == 200
    undone = api.post("/api/pairs/undo", json={"labeler": "ann"}).json()
    assert undone["undone"]["choice"] == "tie"
    assert (undone["left"], undone["right"]) == (second["left"], second["right"])

    progress = api.get("/api/pairs/progress", params={"labeler": "ann"}).json()
    assert (progress["choices"], progress["pairs"], progress["skipped"]) == (1, 1, 0)
    stats = api.get("/api/pairs/stats").json()
    assert stats["choices"] == 1 and stats["labelers"][0]["undos"] == 1
    assert api.get("/api/stats").json()["pairs"]["choices"] == 1, "on the stats page too"

    events = pair_events(home)
    assert events["kind"].to_list() == ["choice", "choice", "undo"]
    assert events["choice"].to_list()[:2] == ["left", "tie"]
    assert events["client"][0] == "testclient tab-1"
    assert set(events["source"][:2]) <= {"stratum", "neighbour", "random", "repeat"}
    assert store_events(home).is_empty(), "no ratings were written"


def test_a_choice_retried_with_its_request_id_is_stored_once(api, home):
    pair = api.get("/api/pairs/next", params={"labeler": "ann"}).json()
    first = choose(api, pair, "right", request_id="abc").json()
    again = choose(api, pair, "right", request_id="abc").json()
    assert first["id"] == again["id"] and pair_events(home).height == 1


def test_the_pair_source_is_recorded_and_never_told(home):
    with client_for(home, rng_seed=3, random_pair_share=1.0, repeat_share=0) as api:
        for _ in range(5):
            pair = api.get("/api/pairs/next", params={"labeler": "bo"}).json()
            assert "source" not in pair and "repeat" not in pair
            choose(api, pair, "left", "bo")
    assert pair_events(home)["source"].to_list() == ["random"] * 5


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"left_key": "danbooru:1", "right_key": "R", "choice": "left"}, 404, "unknown left_key"),
        ({"left_key": "L", "right_key": "x", "choice": "left"}, 404, "unknown right_key"),
        ({"right_key": "R", "choice": "left"}, 422, "left_key is missing"),
        ({"left_key": "L", "right_key": "R"}, 422, "choice is missing"),
        ({"left_key": "L", "right_key": "R", "choice": "up"}, 422, "choice must be"),
        ({"left_key": "L", "right_key": "L", "choice": "left"}, 422, "two different posts"),
        ({"left_key": "L", "right_key": "R", "choice": "tie", "request_id": 5}, 422, "request_id"),
    ],
)
def test_bad_choices_get_a_4xx_with_a_message(api, body, status, message):
    pair = api.get("/api/pairs/next", params={"labeler": "a"}).json()
    keys = {"L": pair["left"]["post_key"], "R": pair["right"]["post_key"]}
    body = {k: keys.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = api.post("/api/pairs", json={"labeler": "a", **body})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_other_refusals(api):
    assert api.get("/api/pairs/next").json()["error"].startswith("labeler is missing")
    assert api.post("/api/pairs/undo", json={"labeler": "nobody"}).status_code == 409
    form = api.post("/api/pairs", data={"labeler": "a"})
    assert form.status_code == 415
    assert api.get("/api/pairs").status_code == 405


def test_a_small_pool_runs_out_of_pairs(tmp_path, demo_images):
    from tests.labels.conftest import make_home

    home = make_home(tmp_path, demo_images, size=4)
    with client_for(home, repeat_share=0) as api:
        for _ in range(6):
            pair = api.get("/api/pairs/next", params={"labeler": "di"}).json()
            assert choose(api, pair, "left", "di").status_code == 200
        assert api.get("/api/pairs/next", params={"labeler": "di"}).json() == {"done": True}


def test_with_a_token_compare_mode_needs_it(home, serve):
    server = serve(home, token=TOKEN)
    for path in ["/compare", "/static/compare.js", "/api/pairs/next?labeler=a", "/api/pairs/stats"]:
        assert raw_get(server, path)[0] == 401, path
        assert raw_get(server, path, {"Authorization": "Bearer wrong"})[0] == 403, path
        assert raw_get(server, path, {"Authorization": f"Bearer {TOKEN}"})[0] == 200, path
    body = {"left_key": "a", "right_key": "b", "labeler": "a", "choice": "left"}
    assert httpx.post(f"{server.url}/api/pairs", json=body).status_code == 401
    assert httpx.post(f"{server.url}/api/pairs/undo", json={"labeler": "a"}).status_code == 401


def test_every_acknowledged_choice_survives_sigkill(home, serve):
    server = serve(home)
    keys = pl.read_parquet(home / "data" / "rating_pool" / "pool.parquet")["post_key"].to_list()
    pairs = [(keys[i], keys[i + 1]) for i in range(0, len(keys) - 1)]
    choices = ("left", "right", "tie")
    bodies = [
        {"left_key": left, "right_key": right, "labeler": "durable", "choice": choices[n % 3]}
        for n, (left, right) in enumerate(pairs)
    ]
    acked = [
        (b["left_key"], b["right_key"], b["choice"])
        for b in acknowledged_until_killed(server, "/api/pairs", bodies)
    ]
    assert 150 <= len(acked) < len(pairs), "the kill should land mid-stream"

    restarted = serve(home)
    stored = pair_events(home).filter(kind="choice", labeler="durable")
    assert set(acked) <= set(stored.select("left_key", "right_key", "choice").iter_rows())
    progress = httpx.get(f"{restarted.url}/api/pairs/progress", params={"labeler": "durable"})
    assert progress.json()["choices"] == stored.height >= len(acked)


def test_vectors_and_scores_found_later_make_close_pairs(home):
    import numpy as np

    from scoretag.cli.pair_inputs import pool_vectors

    pool = pl.read_parquet(home / "data" / "rating_pool" / "pool.parquet")
    images = pool["image_key"].unique().sort()
    rows = np.random.default_rng(0).normal(size=(images.len(), 8)) * 3
    keys, unit = pool_vectors(pool, images, rows)
    assert keys == pool["post_key"].to_list(), "posts sharing an image share its vector"
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0)
    scores = pl.DataFrame({"post_key": keys, "score": np.linspace(0, 1, len(keys))})
    with client_for(home, rng_seed=2, random_pair_share=0, repeat_share=0) as api:
        api.app.state.labeling.attach(scores, (keys, unit))
        for _ in range(20):
            pair = api.get("/api/pairs/next", params={"labeler": "cy"}).json()
            assert choose(api, pair, "left", "cy").status_code == 200
    assert set(pair_events(home)["source"]) == {"close"}


def test_serve_finds_the_pools_vectors_in_the_embedding_store(tmp_path):
    """Vectors of the pool's images from the store, unit length; no active head, no scores."""
    import numpy as np

    from assets.embeddings.assets import store_for
    from orchestration.profile import load_profile
    from orchestration.resources import BackboneResource
    from scoretag.cli import pair_inputs

    profile = load_profile("demo", tmp_path)
    pool = pl.DataFrame({"post_key": ["a:1", "a:2", "a:3"], "image_key": ["x", "y", "z"]})
    empty = pair_inputs.load(profile.layout, profile.settings, pool)
    assert empty.vectors is None and "no image vectors" in empty.note
    store = store_for(profile.layout, BackboneResource.from_settings(profile.settings.backbone))
    dim = store.ensure().identity.embed_dim
    rows = np.random.default_rng(0).normal(size=(2, dim)).astype(np.float16)
    store.write_shard("danbooru/file-0", ["x", "y"], rows)
    found = pair_inputs.load(profile.layout, profile.settings, pool)
    keys, unit = found.vectors
    assert keys == ["a:1", "a:2"] and np.allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-3)
    assert found.scores is None and "no active head" in found.note
    from dataclasses import asdict

    from assets.head.artifact import build_card
    from assets.head.models import Ridge
    from assets.head.paths import registry

    weight = np.linspace(-1, 1, dim)
    heads = registry(profile.layout)
    card = build_card(Ridge(weight, 0.5, 1.0, 0.0).net(), backbone=asdict(store.identity))
    heads.activate(heads.save(Ridge(weight, 0.5, 1.0, 0.0).net(), card).version, "test")
    scored = pair_inputs.load(profile.layout, profile.settings, pool)
    expected = np.clip(unit.astype(np.float64) @ weight + 0.5, 0, 1)
    assert scored.scores["post_key"].to_list() == ["a:1", "a:2"]
    assert np.allclose(scored.scores["score"].to_numpy(), expected, atol=1e-3)
    assert "scores of head" in scored.note
