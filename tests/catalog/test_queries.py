"""The named queries of sql/queries/ and `scoretag query`, on a small catalog built by hand.

The catalog: sites alpha and beta, posts 1..15 each (odd ids rated g, even e), plus alpha:16,
deleted, scored 0.99. Under the active head h2, alpha:i scores i/20 and beta:i 1 - i/20; every
percentile is set equal to its score, so expectations can be worked out by hand. norm_score is
i/16 on both sites: popularity rises with the score on alpha and falls on beta. beta:15 is
immature, with norm_score 1/16 (tied with beta:1). h1, activated before h2, scores the same
except three movers; h0 was registered last but never activated, and scored nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr

from assets.catalog.queries import (
    SQL_DIR,
    NamedQuery,
    bind,
    connect_read_only,
    load_queries,
    parse_query,
    run,
    run_adhoc,
)
from scoretag.cli import cli

NAMES = {
    "top_posts",
    "bucket_distribution",
    "score_vs_popularity",
    "disagreements",
    "tag_scores",
    "compare_heads",
}
H1_MOVERS = {"alpha:1": 0.90, "beta:1": 0.10, "beta:2": 0.60}
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _posts() -> list[tuple]:
    rows = []
    for site in ("alpha", "beta"):
        for i in range(1, 16):
            tags = ["common", f"{site}_tag"] + (["rare"] if i <= 3 else [])
            if (site, i) == ("beta", 5):
                tags = ["common", "common", "beta_tag"]  # a tag listed twice counts once
            norm = 1 / 16 if (site, i) == ("beta", 15) else i / 16
            immature = (site, i) == ("beta", 15)
            rows.append(
                (f"{site}:{i}", site, i, "g" if i % 2 else "e", 10 * i, norm, False, immature, tags)
            )
    rows.append(("alpha:16", "alpha", 16, "g", 1, None, True, False, ["gone"]))
    return rows


def _h2_score(post_key: str) -> float:
    site, i = post_key.split(":")
    if post_key == "alpha:16":
        return 0.99
    return int(i) / 20 if site == "alpha" else 1 - int(i) / 20


def build_catalog(path: Path, heads: bool = True) -> Path:
    """The catalog described in the module's docstring, at `path`."""
    con = duckdb.connect(str(path))
    for schema in sorted((SQL_DIR / "schema").glob("*.sql")):
        con.execute(schema.read_text())
    posts = _posts()
    con.executemany(
        "INSERT INTO posts (post_key, site, post_id, image_key, rating, score, norm_score, "
        "is_deleted, immature, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(key, site, pid, f"img-{key}", *rest) for key, site, pid, *rest in posts],
    )
    if heads:
        con.execute(
            "INSERT INTO heads (version, head_type, active, activated_at, registered_at) VALUES "
            "('h1', 'ridge', false, $t0 + INTERVAL 1 DAY, $t0), "
            "('h2', 'ridge', true, $t0 + INTERVAL 2 DAY, $t0 + INTERVAL 1 DAY), "
            "('h0', 'ridge', false, NULL, $t0 + INTERVAL 3 DAY)",
            {"t0": T0},
        )
        scores = []
        for key, *_ in posts:
            h2 = _h2_score(key)
            h1 = H1_MOVERS.get(key, h2)
            scores += [(key, f"img-{key}", "h2", h2, h2, T0), (key, f"img-{key}", "h1", h1, h1, T0)]
        con.executemany(
            "INSERT INTO scores (post_key, image_key, head_version, score, percentile, "
            "scored_at) VALUES (?, ?, ?, ?, ?, ?)",
            scores,
        )
    con.close()
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return build_catalog(tmp_path / "catalog.duckdb")


def query(path: Path, name: str, **given: str) -> list[dict]:
    """The rows of named query `name` on the catalog at `path`."""
    q = load_queries()[name]
    con = connect_read_only(path)
    try:
        return run(con, q.sql, bind(q, given)).to_pylist()
    finally:
        con.close()


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), "query", *args])


# --- the query files ------------------------------------------------------------------------


def test_every_query_file_parses_with_its_header():
    queries = load_queries()
    assert set(queries) >= NAMES
    top = queries["top_posts"]
    assert top.description.startswith("The best-scored posts of each site")
    assert top.params == {
        "limit": (20, "posts per site"),
        "site": ("", "only this site ('' = all)"),
    }
    assert queries["tag_scores"].params["min_posts"][0] == 20
    assert queries["score_vs_popularity"].params["include_immature"][0] is False


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("-- description: d\nSELECT 1", ":2: the header has no `-- name:` line"),
        ("-- name: q\n-- description: d\n-- parm: x = 1 : y\nSELECT $x", ":3: unknown header key"),
        ("-- name: q\n-- description: d\n-- param: x = one : y\nSELECT $x", ":3: malformed param"),
        ("-- name: q\n-- description: d\n-- param: x = 1\nSELECT $x", ":3: malformed param"),
        ("-- name: q\n-- description: d\n-- param: x = 'a : y\nSELECT $x", ":3: malformed param"),
        ("-- name: other\n-- description: d\nSELECT 1", ":1: the query's name 'other'"),
        ("-- name: q\n-- description: d\nSELECT $x", ":3: the SQL uses undeclared parameters: x"),
        ("-- name: q\n-- description: d\n-- param: x = 1 : y\nSELECT 1", "does not use: x"),
        ("-- name: q\n-- description: d\n--\n-- param: x = 1 : y\nSELECT $x", ":4: `param:` comes"),
        ("-- name: q\n-- description: d\nSELECT 1; SELECT 2", ":3: a query file holds exactly one"),
        ("-- name: q\n-- description: d\nDELETE FROM posts", ":3: a query file holds exactly one"),
        ("-- name: q\n-- description: d\nSELEC 1", ":3: the SQL does not parse"),
        ("-- name: q\n-- description: d\n", ":3: the file has a header but no SQL"),
    ],
)
def test_a_malformed_header_names_the_file_and_line(tmp_path: Path, header: str, message: str):
    path = tmp_path / "q.sql"
    path.write_text(header)
    with pytest.raises(ValueError, match="q.sql") as raised:
        parse_query(path)
    assert message in str(raised.value)


def test_header_defaults_are_typed_literals(tmp_path: Path):
    path = tmp_path / "q.sql"
    path.write_text(
        "-- name: q\n-- description: d\n"
        "-- param: n = -3 : an int\n-- param: x = 0.25 : a float\n"
        "-- param: s = 'it''s: here' : a string with a colon\n-- param: b = true : a bool\n"
        "--\n-- note: free text after the keys may say `word:`, and mention $notaparam\n"
        "SELECT $n, $x, $s, $b, '$literal'"
    )
    q = parse_query(path)
    assert q.params == {
        "n": (-3, "an int"),
        "x": (0.25, "a float"),
        "s": ("it's: here", "a string with a colon"),
        "b": (True, "a bool"),
    }


# --- binding ----------------------------------------------------------------------------------


def test_bind_converts_strings_to_the_defaults_types():
    q = NamedQuery("q", "d", {"n": (1, ""), "x": (0.5, ""), "s": ("", ""), "b": (False, "")}, "")
    assert bind(q, {}) == {"n": 1, "x": 0.5, "s": "", "b": False}
    assert bind(q, {"n": "7", "x": "1e-2", "s": "07", "b": "yes"}) == {
        "n": 7,
        "x": 0.01,
        "s": "07",
        "b": True,
    }
    with pytest.raises(ValueError, match="parameter 'n' of query 'q' must be an integer, not 'x'"):
        bind(q, {"n": "x"})
    with pytest.raises(ValueError, match="must be an integer, not '1.5'"):
        bind(q, {"n": "1.5"})
    with pytest.raises(ValueError, match="must be a number"):
        bind(q, {"x": "much"})
    with pytest.raises(ValueError, match="must be true or false"):
        bind(q, {"b": "maybe"})


def test_bind_refuses_an_unknown_parameter_listing_the_known_ones():
    q = load_queries()["top_posts"]
    with pytest.raises(ValueError, match="unknown parameter top .*known parameters: limit, site"):
        bind(q, {"top": "3"})
    with pytest.raises(ValueError, match="it takes no parameters"):
        bind(load_queries()["bucket_distribution"], {"x": "1"})


# --- each named query -------------------------------------------------------------------------


def test_top_posts_gives_the_best_of_each_site_in_order(catalog: Path):
    rows = query(catalog, "top_posts", limit="2")
    assert [(r["site"], r["site_rank"], r["post_key"]) for r in rows] == [
        ("alpha", 1, "alpha:15"),  # alpha:16 scores higher, but is deleted
        ("alpha", 2, "alpha:14"),
        ("beta", 1, "beta:1"),
        ("beta", 2, "beta:2"),
    ]
    assert [r["aesthetic_score"] for r in rows] == [0.75, 0.7, 0.95, 0.9]
    assert {r["head_version"] for r in rows} == {"h2"}
    only_beta = query(catalog, "top_posts", limit="3", site="beta")
    assert [r["post_key"] for r in only_beta] == ["beta:1", "beta:2", "beta:3"]
    assert len(query(catalog, "top_posts")) == 15 + 15  # limit 20 > posts of each site


def test_bucket_distribution_falls_back_on_percentile_bands(catalog: Path):
    rows = {(r["site"], r["rating"]): r for r in query(catalog, "bucket_distribution")}
    assert set(rows) == {("alpha", "e"), ("alpha", "g"), ("beta", "e"), ("beta", "g")}
    assert {r["bucket_source"] for r in rows.values()} == {"percentile"}
    # alpha g: percentiles .05 .15 .25 .35 .45 .55 .65 .75 and .99 -> 1 + floor(9p)
    alpha_g = rows[("alpha", "g")]
    assert [alpha_g[f"score_{b}"] for b in range(1, 10)] == [1, 1, 1, 1, 2, 1, 1, 0, 1]
    for r in rows.values():
        assert sum(r[f"score_{b}"] for b in range(1, 10)) == r["scored"]
    assert sum(r["scored"] for r in rows.values()) == 31  # every post is scored


def test_bucket_distribution_uses_the_active_heads_calibration(catalog: Path):
    con = duckdb.connect(str(catalog))
    # h2: bucket 1 from 0.10 (alpha:1 at 0.05 lies below it: still bucket 1), then 0.50 and up
    # by 0.06. h1's cut-points put everything in bucket 9: they must not be used.
    cuts = [(1, 0.10)] + [(b, round(0.50 + (b - 2) * 0.06, 2)) for b in range(2, 10)]
    con.executemany(
        "INSERT INTO calibrations VALUES (?, ?, ?, ?, ?)",
        [("h2", b, low, low + 0.06, T0) for b, low in cuts]
        + [("h1", b, 0.0 if b == 9 else 2.0, 3.0, T0) for b in range(1, 10)],
    )
    con.close()
    rows = {(r["site"], r["rating"]): r for r in query(catalog, "bucket_distribution")}
    assert {r["bucket_source"] for r in rows.values()} == {"calibration"}
    # alpha g scores .05 .15 .25 .35 .45 | .55 | .65 | .75 | .99
    alpha_g = rows[("alpha", "g")]
    assert [alpha_g[f"score_{b}"] for b in range(1, 10)] == [5, 1, 0, 1, 0, 1, 0, 0, 1]
    for r in rows.values():
        assert sum(r[f"score_{b}"] for b in range(1, 10)) == r["scored"]
    assert sum(r["scored"] for r in rows.values()) == 31


def test_score_vs_popularity_per_site(catalog: Path):
    rows = {r["site"]: r for r in query(catalog, "score_vs_popularity")}
    # alpha:16 has no norm_score, beta:15 is immature: both left out
    assert (rows["alpha"]["n"], rows["alpha"]["spearman"], rows["alpha"]["pearson"]) == (15, 1, 1)
    assert (rows["beta"]["n"], rows["beta"]["spearman"], rows["beta"]["pearson"]) == (14, -1, -1)

    with_young = {r["site"]: r for r in query(catalog, "score_vs_popularity", include_immature="1")}
    beta = [(_h2_score(k), n) for k, s, _, _, _, n, *_ in _posts() if s == "beta"]
    expected = spearmanr([a for a, _ in beta], [n for _, n in beta]).statistic  # average ranks
    assert with_young["beta"]["n"] == 15
    assert with_young["beta"]["spearman"] == pytest.approx(expected, abs=1e-4)
    assert -1 < with_young["beta"]["spearman"] < 0


def test_disagreements_largest_gap_first(catalog: Path):
    # gap = percentile - norm_score: beta:i 1 - 9i/80, alpha:i -i/80; beta:15 is immature
    both = query(catalog, "disagreements", limit="5")
    assert [r["post_key"] for r in both] == ["beta:1", "beta:2", "beta:3", "beta:14", "beta:4"]
    assert [r["gap"] for r in both] == [0.8875, 0.775, 0.6625, -0.575, 0.55]
    assert [r["verdict"] for r in both] == ["underrated"] * 3 + ["overrated", "underrated"]
    over = query(catalog, "disagreements", limit="2", direction="overrated")
    assert [r["post_key"] for r in over] == ["beta:14", "beta:13"]
    under = query(catalog, "disagreements", limit="1", direction="underrated", site="alpha")
    assert under == []  # every alpha post is a little overrated
    with pytest.raises(ValueError, match="direction must be both, underrated or overrated"):
        query(catalog, "disagreements", direction="sideways", site="nowhere")


def test_tag_scores_support_and_order(catalog: Path):
    assert [r["tag"] for r in query(catalog, "tag_scores")] == ["common"]  # only one on >= 20
    common = query(catalog, "tag_scores")[0]
    assert (common["posts"], common["sites"], common["mean_score"]) == (30, 2, 0.5)

    top = query(catalog, "tag_scores", min_posts="10")
    assert [(r["tag"], r["mean_score"]) for r in top] == [
        ("beta_tag", 0.6),
        ("common", 0.5),
        ("alpha_tag", 0.4),
    ]
    bottom = query(catalog, "tag_scores", min_posts="10", order="bottom", limit="2")
    assert [r["tag"] for r in bottom] == ["alpha_tag", "common"]
    # rare: alpha 1..3 and beta 1..3, mean 0.5 as common's: the tie goes by name
    five = query(catalog, "tag_scores", min_posts="5")
    assert [r["tag"] for r in five] == ["beta_tag", "common", "rare", "alpha_tag"]
    assert query(catalog, "tag_scores", min_posts="1", limit="1")[0]["tag"] == "gone"
    alpha_only = query(catalog, "tag_scores", min_posts="1", site="beta", order="bottom")
    assert "alpha_tag" not in {r["tag"] for r in alpha_only}
    with pytest.raises(ValueError, match="order must be top or bottom, not 'best'"):
        query(catalog, "tag_scores", order="best")


def test_compare_heads_defaults_to_active_and_last_activated(catalog: Path):
    rows = query(catalog, "compare_heads", limit="4")
    assert {(r["head_a"], r["head_b"]) for r in rows} == {("h2", "h1")}  # not h0: never active
    assert [(r["post_key"], r["percentile_change"]) for r in rows[:3]] == [
        ("alpha:1", 0.85),  # 0.05 -> 0.90
        ("beta:1", -0.85),  # 0.95 -> 0.10
        ("beta:2", -0.3),  # 0.90 -> 0.60
    ]
    assert rows[3]["percentile_change"] == 0
    first = rows[0]
    assert (first["site"], first["rating"], first["score_a"], first["score_b"]) == (
        "alpha",
        "g",
        0.05,
        0.9,
    )
    assert {r["n"] for r in rows} == {31}
    assert {r["mean_abs_percentile_change"] for r in rows} == {round(2.0 / 31, 4)}
    spearman = rows[0]["spearman"]
    assert 0 < spearman < 1 and {r["spearman"] for r in rows} == {spearman}

    h2 = [_h2_score(k) for k, *_ in _posts()]
    h1 = [H1_MOVERS.get(k, s) for (k, *_), s in zip(_posts(), h2, strict=True)]
    assert spearman == pytest.approx(spearmanr(h2, h1).statistic, abs=1e-4)

    swapped = query(catalog, "compare_heads", a="h1", b="h2", limit="1")
    assert (swapped[0]["post_key"], swapped[0]["percentile_change"]) == ("alpha:1", -0.85)
    assert query(catalog, "compare_heads", b="h0") == []  # h0 scored nothing
    with pytest.raises(ValueError, match="unknown head 'nope' \\(a\\)"):
        query(catalog, "compare_heads", a="nope")


def test_compare_heads_needs_two_heads(tmp_path: Path):
    path = build_catalog(tmp_path / "catalog.duckdb", heads=False)
    with pytest.raises(ValueError, match="the catalog has no active head"):
        query(path, "compare_heads")


# --- ad-hoc SQL, read-only ---------------------------------------------------------------------


def test_adhoc_select_reads_tables_and_views(catalog: Path):
    table = run_adhoc(catalog, "SELECT site, count(*) AS n FROM catalog GROUP BY site ORDER BY 1")
    assert table.to_pylist() == [{"site": "alpha", "n": 16}, {"site": "beta", "n": 15}]
    assert run_adhoc(catalog, "SELECT count(*) AS n FROM head_summary").to_pylist() == [{"n": 3}]


REFUSED = [
    "INSERT INTO heads (version, active) VALUES ('x', false)",
    "UPDATE scores SET score = 0",
    "DELETE FROM posts",
    "CREATE TABLE evil (a INTEGER)",
    "CREATE OR REPLACE VIEW catalog AS SELECT 1",
    "DROP TABLE posts",
    "SELECT 1; DELETE FROM posts",
    "COPY posts TO '{dir}/stolen.csv'",
    "COPY (SELECT 1) TO '{dir}/stolen.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{dir}/export'",
    "ATTACH '{dir}/other.duckdb' AS other (READ_WRITE)",
    "ATTACH ':memory:' AS scratch",
    "SET enable_external_access = true",
]


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("sql", REFUSED)
def test_adhoc_writes_are_refused_and_leave_the_catalog_untouched(catalog: Path, sql: str):
    before = _state(catalog.parent)
    with pytest.raises(
        PermissionError, match="the catalog is opened read-only: writes are refused"
    ):
        run_adhoc(catalog, sql.format(dir=catalog.parent))
    assert _state(catalog.parent) == before  # no file written, none changed


def test_adhoc_sql_errors_are_value_errors(catalog: Path):
    with pytest.raises(ValueError, match="Parser Error"):
        run_adhoc(catalog, "SELEC 1")
    with pytest.raises(ValueError, match="nosuch"):
        run_adhoc(catalog, "SELECT * FROM nosuch")


def test_a_catalog_being_written_is_a_clear_error(catalog: Path):
    writer = duckdb.connect(str(catalog))  # as a pipeline run holds it
    try:
        with pytest.raises(OSError, match="cannot open the catalog .* read-only"):
            connect_read_only(catalog)
    finally:
        writer.close()


def test_a_missing_catalog_says_to_run_the_pipeline(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        run_adhoc(tmp_path / "catalog.duckdb", "SELECT 1")


# --- the command ------------------------------------------------------------------------------


def test_cli_list_shows_every_query(tmp_path: Path):
    result = invoke(tmp_path, "--list")  # needs no catalog
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert name in result.output
    assert "min_posts = 20" in result.output


def test_cli_named_query(catalog: Path):
    result = invoke(catalog.parent, "top_posts", "--param", "limit=1", "-p", "site=beta")
    assert result.exit_code == 0, result.output
    assert "0.95" in result.output and "0.9 " not in result.output  # beta:1 only
    as_json = invoke(
        catalog.parent, "top_posts", "-p", "limit=1", "-p", "site=beta", "--format", "json"
    )
    assert as_json.exit_code == 0, as_json.output
    assert [r["post_key"] for r in json.loads(as_json.stdout)] == ["beta:1"]


def test_cli_table(catalog: Path):
    result = invoke(catalog.parent, "--sql", "SELECT post_key, tags FROM posts WHERE post_id = 1")
    assert result.exit_code == 0, result.output
    assert "alpha:1" in result.output and "beta:1" in result.output
    assert "common, alpha_tag, rare" in result.output


def test_cli_table_shows_at_most_100_rows(catalog: Path):
    result = invoke(catalog.parent, "--sql", "SELECT range AS i FROM range(250)")
    assert result.exit_code == 0, result.output
    assert "… 150 more rows" in result.output


SELECT = "SELECT post_key, norm_score, tags, created_at FROM posts ORDER BY site, post_id"


def _selected() -> list[dict]:
    """SELECT's rows, worked out from the posts the catalog was built with (none has a
    created_at)."""
    posts = sorted(_posts(), key=lambda post: (post[1], post[2]))  # site, post_id
    return [
        {"post_key": key, "norm_score": norm, "tags": tags, "created_at": None}
        for key, _, _, _, _, norm, _, _, tags in posts
    ]


def test_cli_adhoc_csv_and_json_to_stdout(catalog: Path):
    csv_out = invoke(catalog.parent, "--sql", SELECT, "--format", "csv")
    assert csv_out.exit_code == 0, csv_out.output
    lines = csv_out.stdout.splitlines()
    assert lines[0] == "post_key,norm_score,tags,created_at"
    assert lines[1] == 'alpha:1,0.0625,"[""common"", ""alpha_tag"", ""rare""]",'
    booleans = invoke(catalog.parent, "--sql", "SELECT true AS t, false AS f", "--format", "csv")
    assert booleans.stdout == "t,f\ntrue,false\n"
    assert len(lines) == 1 + 31

    json_out = invoke(catalog.parent, "--sql", SELECT, "--format", "json")
    assert json_out.exit_code == 0, json_out.output
    records = json.loads(json_out.stdout)
    assert len(records) == 31
    assert records[0] == {
        "post_key": "alpha:1",
        "norm_score": 0.0625,
        "tags": ["common", "alpha_tag", "rare"],
        "created_at": None,
    }
    assert records == _selected()


@pytest.mark.parametrize("suffix", ["csv", "json", "parquet"])
def test_cli_adhoc_round_trips_through_a_file(catalog: Path, tmp_path: Path, suffix: str):
    out = tmp_path / "out" / f"result.{suffix}"  # the format comes from the extension
    result = invoke(catalog.parent, "--sql", SELECT, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Wrote 31 rows" in result.output
    expected = _selected()
    if suffix == "parquet":
        assert pq.read_table(out).to_pylist() == expected
    elif suffix == "json":
        assert json.loads(out.read_text()) == expected
    else:
        back = duckdb.sql(f"SELECT * FROM read_csv('{out}')").fetchall()
        assert [row[0] for row in back] == [r["post_key"] for r in expected]
        assert [row[1] for row in back] == [r["norm_score"] for r in expected]


def test_cli_parquet_needs_out(catalog: Path):
    result = invoke(catalog.parent, "--sql", "SELECT 1", "--format", "parquet")
    assert result.exit_code == 1
    assert "--format parquet needs --out FILE" in result.output


@pytest.mark.parametrize("sql", REFUSED)
def test_cli_refuses_writes_and_leaves_the_catalog_untouched(catalog: Path, sql: str):
    before = _state(catalog.parent)
    result = invoke(catalog.parent, "--sql", sql.format(dir=catalog.parent))
    assert result.exit_code == 1
    assert "the catalog is opened read-only: writes are refused" in result.output
    assert _state(catalog.parent) == before


def test_cli_unknown_query_lists_the_known_ones(catalog: Path):
    result = invoke(catalog.parent, "best_posts")
    assert result.exit_code == 1
    assert "unknown query 'best_posts': choose one of" in result.output
    assert "top_posts" in result.output


def test_cli_bad_params_are_clear_errors(catalog: Path):
    unknown = invoke(catalog.parent, "top_posts", "-p", "n=3")
    assert unknown.exit_code == 1
    assert "unknown parameter n for query 'top_posts'; known parameters: limit, site" in (
        unknown.output
    )
    bad = invoke(catalog.parent, "top_posts", "-p", "limit=many")
    assert bad.exit_code == 1
    assert "parameter 'limit' of query 'top_posts' must be an integer, not 'many'" in bad.output
    shapeless = invoke(catalog.parent, "top_posts", "-p", "limit")
    assert shapeless.exit_code == 1 and "--param takes KEY=VALUE" in shapeless.output
    invalid = invoke(catalog.parent, "disagreements", "-p", "direction=up")
    assert invalid.exit_code == 1 and "direction must be both, underrated or overrated" in (
        invalid.output
    )


def test_cli_missing_catalog(tmp_path: Path):
    result = invoke(tmp_path, "top_posts")
    assert result.exit_code == 1
    assert f"no catalog at {tmp_path / 'catalog.duckdb'}: run the pipeline first" in result.output
    assert not (tmp_path / "catalog.duckdb").exists()


def test_cli_wants_exactly_one_of_name_list_sql(tmp_path: Path):
    for args in ([], ["top_posts", "--sql", "SELECT 1"], ["--list", "--sql", "SELECT 1"]):
        result = invoke(tmp_path, *args)
        assert result.exit_code == 2, args
        assert "give exactly one of a query NAME, --list or --sql" in result.output


def test_every_named_query_runs_on_an_empty_catalog(tmp_path: Path):
    path = tmp_path / "catalog.duckdb"
    con = duckdb.connect(str(path))
    for schema in sorted((SQL_DIR / "schema").glob("*.sql")):
        con.execute(schema.read_text())
    con.close()
    for name in NAMES - {"compare_heads"}:  # which has no head to compare: an error, tested
        assert query(path, name) == [], name
    # a mistyped choice is an error even where no row would be shown
    with pytest.raises(ValueError, match="direction must be"):
        query(path, "disagreements", direction="up")
    with pytest.raises(ValueError, match="order must be"):
        query(path, "tag_scores", order="best")
