"""image_files: the opt-in lineage step that downloads what is missing, in the network pool."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.images.assets import image_files
from assets.images.checks import image_files_match_posts
from orchestration import pools
from orchestration.profile import load_profile
from orchestration.resources import ScoretagResource
from tests.images.server import ImageServer, danbooru_record, demo_files
from tests.images.test_fetch_cli import ingest_page, stored, write_config


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return demo_files(4, tmp_path_factory.mktemp("demo_images"))


def materialize(home, config) -> dict:
    profile = load_profile(home=home, config=config)
    resources = {"scoretag": ScoretagResource.for_profile(profile, str(config))}
    result = dg.materialize([image_files], resources=resources)
    (mat,) = result.asset_materializations_for_node("image_files")
    return {k: v.value for k, v in mat.metadata.items()}


def test_off_by_default_it_downloads_nothing(files, tmp_path):
    with ImageServer() as server:
        for f in files:
            server.add(f.path, f.data)
        home = tmp_path / "home"
        ingest_page(home, [danbooru_record(i + 1, f, server.base) for i, f in enumerate(files)])
        meta = materialize(home, write_config(tmp_path))
        assert meta["enabled"] is False and server.hits == []


def test_on_it_fetches_the_missing_images_with_metadata(files, tmp_path):
    with ImageServer() as server:
        for f in files[:3]:
            server.add(f.path, f.data)
        server.add(files[3].path, files[3].data, "404")
        home = tmp_path / "home"
        ingest_page(home, [danbooru_record(i + 1, f, server.base) for i, f in enumerate(files)])
        config = write_config(tmp_path, fetch=True)
        meta = materialize(home, config)
        assert (meta["enabled"], meta["fetched"], meta["failed"]) == (True, 3, 1)
        assert "http 404" in meta["failed_by_reason"]
        assert meta["bytes"] == sum(len(f.data) for f in files[:3]) and meta["seconds"] >= 0
        assert set(stored(home)) == {f.md5 for f in files[:3]}
        again = materialize(home, config)  # new posts only: the stored and the 404 left out
        assert (again["fetched"], again["failed"]) == (0, 0)
        assert "already stored" in again["left_out"] and "failed before" in again["left_out"]


def test_it_runs_in_the_network_pool_limited_to_one():
    assert image_files.op.pool == pools.NETWORK
    assert load_profile("demo").pool_limits[pools.NETWORK] == 1


def test_the_check_hashes_what_the_last_download_stored_again(files, tmp_path):
    with ImageServer() as server:
        for f in files:
            server.add(f.path, f.data)
        home = tmp_path / "home"
        ingest_page(home, [danbooru_record(i + 1, f, server.base) for i, f in enumerate(files)])
        config = write_config(tmp_path, fetch=True)
        profile = load_profile(home=home, config=config)
        resources = {"scoretag": ScoretagResource.for_profile(profile, str(config))}
        result = dg.materialize([image_files, image_files_match_posts], resources=resources)
        [check] = result.get_asset_check_evaluations()
        assert check.passed and check.metadata["rehashed"].value == len(files)
        # A stored file changed behind our back (or stored under the wrong name) fails it.
        victim = next((home / "images" / "fetched").rglob(f"{files[0].md5}.*"))
        victim.write_bytes(files[1].data)
        again = dg.materialize(
            [image_files, image_files_match_posts],
            resources=resources,
            selection=dg.AssetSelection.checks(image_files_match_posts),
            raise_on_error=False,  # the check is blocking: its failure fails the run
        )
        [check] = again.get_asset_check_evaluations()
        assert not check.passed
