"""Images only by pool key, and a token on every request once the app leaves loopback."""

from __future__ import annotations

import http.client
import signal

import httpx
import pytest
from click.testing import CliRunner

from assets.labels.gate import needs_token
from scoretag.cli import cli
from tests.labels.conftest import Server, make_home

TOKEN = "s3cret-token"


def raw_get(server, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    """A request sent byte for byte as written (httpx would normalise `..` away)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_images):
    """One server for the read-only requests of this module."""
    home = make_home(tmp_path_factory.mktemp("security"), demo_images, size=50)
    (home / "secret.txt").write_text("do not serve me")
    server = Server(home).start()
    yield server
    server.kill(signal.SIGTERM)


@pytest.mark.parametrize(
    "path",
    [
        "/images/../secret.txt",
        "/images/../../home/secret.txt",
        "/images/..%2fsecret.txt",
        "/images/%2e%2e%2fsecret.txt",
        "/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/images/%2e%2e",
        "/images/..",
        "/images//etc/passwd",
        "/images/%2Fetc%2Fpasswd",
        "/images/",
        "/images",
        "/images/danbooru:999999999",
        "/images/" + "a" * 300,
        "/previews/../secret.txt",
        "/previews/%2e%2e%2fsecret.txt",
        "/previews/%2Fetc%2Fpasswd",
        "/previews/danbooru:999999999",
        "/static/app.py",
        "/static/../app.py",
        "/static/%2e%2e%2fapp.py",
        "/static/",
    ],
)
def test_paths_from_the_request_are_never_files(server, path):
    status, body = raw_get(server, path)
    assert status in (400, 404), (path, status)
    assert b"do not serve me" not in body and b"root:" not in body


def test_pool_images_and_pages_are_served(server):
    key = httpx.get(f"{server.url}/api/next", params={"labeler": "a"}).json()["post_key"]
    status, body = raw_get(server, f"/images/{key}")
    assert status == 200 and len(body) > 100
    assert raw_get(server, f"/previews/{key}")[0] == 200
    for page in ("/", "/stats", "/static/app.js", "/static/style.css"):
        assert raw_get(server, page)[0] == 200, page


def test_an_address_off_loopback_needs_a_token(home):
    assert not needs_token("127.0.0.1") and not needs_token("::1")
    assert not needs_token("localhost")
    assert needs_token("0.0.0.0") and needs_token("192.168.1.5") and needs_token("example.org")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--home", str(home), "label", "serve", "--host", "0.0.0.0"],
        env={"SCORETAG_LABEL_TOKEN": ""},
    )
    assert result.exit_code == 1
    assert "refusing to serve on 0.0.0.0 without a token" in result.output


def test_without_a_pool_serve_says_what_to_do(tmp_path):
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "label", "serve"])
    assert result.exit_code == 1 and "materialize rating_pool first" in result.output


def test_with_a_token_every_request_must_carry_it(home, serve):
    server = serve(home, token=TOKEN)
    key = httpx.get(
        f"{server.url}/api/next", params={"labeler": "a"}, headers=server.headers
    ).json()["post_key"]
    protected = [
        "/",
        "/stats",
        "/static/app.js",
        "/api/stats",
        "/api/next?labeler=a",
        f"/images/{key}",
        f"/previews/{key}",
    ]
    for path in protected:
        assert raw_get(server, path)[0] == 401, path
        assert raw_get(server, path, {"Authorization": "Bearer wrong"})[0] == 403, path
        assert raw_get(server, path, {"Authorization": f"Bearer {TOKEN}x"})[0] == 403, path
        assert raw_get(server, path, {"Cookie": "scoretag_label_token=wrong"})[0] == 403, path
        assert raw_get(server, path, {"Authorization": f"Bearer {TOKEN}"})[0] == 200, path
    post = httpx.post(
        f"{server.url}/api/labels", json={"post_key": key, "labeler": "a", "value": 3}
    )
    assert post.status_code == 401


def test_opening_the_page_with_the_token_sets_a_cookie(home, serve):
    server = serve(home, token=TOKEN)
    assert raw_get(server, "/?token=nope")[0] == 403
    with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
        login = browser.get(f"/?token={TOKEN}")  # follows the redirect, keeps the cookie
        assert login.status_code == 200 and "token" not in str(login.url)
        assert login.history[0].status_code == 303
        assert "httponly" in login.history[0].headers["set-cookie"].lower()
        item = browser.get("/api/next", params={"labeler": "a"}).json()
        assert browser.get(item["image_url"]).status_code == 200
        saved = browser.post(
            "/api/labels", json={"post_key": item["post_key"], "labeler": "a", "value": 5}
        )
        assert saved.status_code == 200


def test_on_loopback_other_host_names_are_refused(home):
    """A page elsewhere cannot reach the app through DNS rebinding: the Host it sends is its
    own name, which the app refuses."""
    from tests.labels.conftest import client_for

    with client_for(home) as client:
        assert client.get("/api/health").status_code == 200
        refused = client.get("/api/health", headers={"Host": "evil.example:8765"})
        assert refused.status_code == 400
