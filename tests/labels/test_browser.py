"""A real browser labels with the keyboard: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import polars as pl

from assets.labels.queue import labeling_order
from tests.conftest import ARTIFACTS
from tests.labels.conftest import make_home, picture_home, pictures, store_events

VALUES = [3, 1, 4, 1, 5, 2, 2, 3, 5, 4]
POOL = 40


def shown(page) -> str:
    return page.get_attribute("#stage", "data-post-key") or ""


def wait_for_another(page, previous: str) -> str:
    page.wait_for_function(
        "(previous) => { const k = document.getElementById('stage').dataset.postKey;"
        " return k && k !== previous; }",
        arg=previous,
    )
    return shown(page)


def test_label_ten_with_the_keyboard_undo_one_and_reload(browser, tmp_path, demo_images, serve):
    server = serve(make_home(tmp_path, demo_images, size=POOL))
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    images: list[str] = []
    page.on("request", lambda r: images.append(r.url) if "/previews/" in r.url else None)
    page.goto(server.url)
    page.fill("#name-input", "alice")
    page.press("#name-input", "Enter")

    keys = [wait_for_another(page, "")]
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    for _ in range(50):  # the shown image and the AHEAD=4 behind it
        if len(set(images)) >= 5:
            break
        page.wait_for_timeout(100)
    assert len(set(images)) >= 5, "the next images are fetched before they are needed"
    for i, value in enumerate(VALUES):
        page.keyboard.press(str(value))
        if i < len(VALUES) - 1:
            keys.append(wait_for_another(page, keys[-1]))
    page.keyboard.press("u")
    page.wait_for_function(f"document.getElementById('stage').dataset.postKey === '{keys[-1]}'")
    page.wait_for_function(
        f"document.getElementById('progress-text').textContent.startsWith('9 / {POOL}')"
    )

    page.reload()
    page.wait_for_function(
        f"document.getElementById('progress-text').textContent.startsWith('9 / {POOL}')"
    )
    assert wait_for_another(page, "") == keys[-1], "the undone image is the next one again"
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("?")
    page.screenshot(path=str(ARTIFACTS / "labeling-app.png"))

    events = store_events(server.home)
    labels = events.filter(kind="label")
    assert events["kind"].to_list() == ["label"] * 10 + ["undo"]
    assert labels["post_key"].to_list() == keys and len(set(keys)) == 10
    assert labels["value"].to_list() == VALUES
    assert set(labels["labeler"]) == {"alice"}
    pool = pl.read_parquet(server.home / "data" / "rating_pool" / "pool.parquet")
    assert keys == labeling_order(pool, seed=0)[:10], "new posts come in the pool's order"
    assert events["undoes"][-1] == labels["id"][-1]


def test_the_page_shows_previews_and_the_full_image_is_one_click_away(browser, tmp_path, serve):
    """Tar members shown as previews (the CLI's default long side, 1024), the original in a
    new tab by link and by `f`, and an undecodable image shown as such and skipped."""
    files = pictures()
    names = {f"danbooru:{i}": name for i, name in enumerate(files, 1)}
    server = serve(picture_home(tmp_path, "tar", files))
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.goto(server.url)
    page.fill("#name-input", "bob")
    page.press("#name-input", "Enter")

    key, done = "", []
    for _ in names:
        key = wait_for_another(page, key)
        page.wait_for_function(
            "() => { const i = document.getElementById('image');"
            " return (i.complete && i.naturalWidth > 0)"
            " || document.getElementById('stage').dataset.broken === '1'; }"
        )
        src = page.eval_on_selector("#image", "i => i.currentSrc")
        assert src.endswith(f"/previews/{key}"), src
        assert page.get_attribute("#full-link", "href") == f"/images/{key}"
        size = page.eval_on_selector("#image", "i => [i.naturalWidth, i.naturalHeight]")
        if names[key] == "rotated":
            assert size == [576, 1024], "the preview, upright, long side 1024"
            with context.expect_page() as opened:
                page.click("#full-link")
            full = opened.value
            full.wait_for_load_state()
            shown = full.evaluate(
                "[document.images[0].naturalWidth, document.images[0].naturalHeight]"
            )
            assert max(shown) == 1600, "the full image is the original"
            full.close()
            with context.expect_page() as opened:
                page.keyboard.press("f")
            assert opened.value.url.endswith(f"/images/{key}")
            opened.value.close()
        if names[key] == "truncated":
            broken = page.get_attribute("#stage", "data-broken") == "1"
            placeholder = size == [640, 360]
            assert broken or placeholder, "a picture that cannot be decoded is shown as such"
            if broken:
                assert "cannot be shown" in page.text_content("#message")
            page.screenshot(path=str(ARTIFACTS / "labeling-undecodable.png"))
            page.keyboard.press("s")
        else:
            page.keyboard.press("3")
        done.append(key)
    page.wait_for_function("document.getElementById('message').textContent.startsWith('All done')")
    # "All done" shows once nothing is left to rate; the last label may still be on its way.
    page.wait_for_function("document.getElementById('saving').textContent === ''")
    events = store_events(server.home)
    assert sorted(events["post_key"].to_list()) == sorted(names)
    skipped = events.filter(kind="skip")["post_key"].to_list()
    assert [names[k] for k in skipped] == ["truncated"]
    context.close()


def shown_pair(page) -> tuple[str, str]:
    keys = page.eval_on_selector("#pair", "p => [p.dataset.leftKey, p.dataset.rightKey]")
    return keys[0], keys[1]


def wait_for_another_pair(page, previous: tuple[str, str]) -> tuple[str, str]:
    page.wait_for_function(
        "(previous) => { const d = document.getElementById('pair').dataset;"
        " return d.leftKey && (d.leftKey !== previous[0] || d.rightKey !== previous[1]); }",
        arg=list(previous),
    )
    return shown_pair(page)


COMPARE_KEYS = ["ArrowLeft", "1", "ArrowRight", "2", "t", "3", "s", "ArrowLeft"]
CHOSEN = ["left", "left", "right", "right", "tie", "tie", None, "left"]


def test_compare_pairs_with_the_keyboard_undo_one_and_reload(browser, tmp_path, demo_images, serve):
    server = serve(make_home(tmp_path, demo_images, size=POOL))
    page = browser.new_page(viewport={"width": 1400, "height": 800})
    images: list[str] = []
    page.on("request", lambda r: images.append(r.url) if "/previews/" in r.url else None)
    page.goto(server.url)
    page.fill("#name-input", "carol")
    page.press("#name-input", "Enter")
    page.click("text=compare")  # the rating page links to compare mode, with the same name
    page.wait_for_url("**/compare")
    assert page.text_content("#who") == "carol"

    pairs = [wait_for_another_pair(page, ("", ""))]
    page.wait_for_function("document.getElementById('left-image').naturalWidth > 0")
    for _ in range(50):  # the pair shown and the AHEAD=3 behind it, both sides each
        if len(set(images)) >= 6:
            break
        page.wait_for_timeout(100)
    assert len(set(images)) >= 6, "the next pairs' images are fetched before they are needed"
    left, right = pairs[0]
    assert page.get_attribute("#left-full", "href") == f"/images/{left}"
    assert page.get_attribute("#right-full", "href") == f"/images/{right}"
    for i, key in enumerate(COMPARE_KEYS):
        page.keyboard.press(key)
        if i < len(COMPARE_KEYS) - 1:
            pairs.append(wait_for_another_pair(page, pairs[-1]))
    page.keyboard.press("u")
    last = pairs[-1]
    page.wait_for_function(
        "(k) => { const d = document.getElementById('pair').dataset;"
        " return d.leftKey === k[0] && d.rightKey === k[1]; }",
        arg=list(last),
    )
    # The last choice is saved (and then undone) before the store is read.
    page.wait_for_function("document.getElementById('saving').textContent === ''")
    page.wait_for_function(
        "document.getElementById('progress-text').textContent.startsWith('6 choices')"
    )

    page.reload()
    page.wait_for_function(
        "document.getElementById('progress-text').textContent.startsWith('6 choices')"
    )
    for side in ("left", "right"):
        page.wait_for_function(f"document.getElementById('{side}-image').naturalWidth > 0")
        box = page.locator(f"#{side}-image").bounding_box()
        assert box["height"] > 400 and box["width"] > 400, "each side gets half the stage"
    page.keyboard.press("?")
    assert page.is_visible("#help") and "tie" in page.text_content("#help")
    page.keyboard.press("Escape")
    page.screenshot(path=str(ARTIFACTS / "labeling-compare.png"))
    with page.context.expect_page() as opened:
        page.keyboard.press("f")
    assert "/images/" in opened.value.url
    opened.value.close()

    from assets.labels.store import LabelStore

    with LabelStore(server.home / "labels.sqlite", read_only=True) as store:
        events = store.pair_events()
    assert events["kind"].to_list() == ["choice"] * 6 + ["skip", "choice", "undo"]
    judged = events.filter(pl.col("kind") != "undo")
    assert list(judged.select("left_key", "right_key").iter_rows()) == pairs
    assert judged["choice"].to_list() == CHOSEN
    assert set(events["labeler"]) == {"carol"}
    assert events["undoes"][-1] == judged["id"][-1]
    assert store_events(server.home).is_empty(), "compare mode writes no ratings"
