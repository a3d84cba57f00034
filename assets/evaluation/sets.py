"""An evaluation set: a folder of images a model generated (one folder per checkpoint's
samples), its images found, hashed and given the prompts they were generated from.

Images are found exactly as `scoretag embed PATH` finds them (`given_images`): image files
anywhere under the folder, and the image members of `.tar` shards. Layouts accepted:

- a folder per prompt (`a-cat/0001.png`, `a-dog/0001.png`), or per seed (`seed-42/...`):
  without prompt text an image is grouped by its folder, and matched to another set's image
  by its path without extension, so two checkpoints sampled into the same layout pair up;
- a sidecar `<same stem>.txt` beside a loose image holding its prompt (kohya's convention);
- a `prompts.jsonl` or `metadata.jsonl` (Hugging Face imagefolder's name) in any folder: one
  JSON object a line naming an image by `file`, `file_name` or `image` (relative to the jsonl's
  folder), its prompt by `prompt`, `text` or `caption`, and optionally an integer `seed`.
  A jsonl line beats a sidecar txt; where two lines name one image, the first (jsonl files in
  path order, then line order) wins and a disagreeing later line is a problem.

Nothing is decoded here (the embedder refuses undecodable images later, with its reasons);
an image whose bytes cannot be read, and a prompt line that cannot be used, become rows of
`problems` with a reason, never silently dropped. A tar shard whose headers cannot be read
stops the search (tarfile.ReadError from the index's reader, naming the shard): its members
cannot even be listed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from assets.images.decode import REASONS, Unusable, read_bytes
from assets.images.given import given_images
from assets.images.locate import LOCATION

NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\Z")
IMAGES: dict[str, pl.DataType] = {
    "source": pl.String,  # posix path relative to the set's root; `<shard>/<member>` in a tar
    **{c: LOCATION[c] for c in ("path", "offset", "length", "file_ext")},
    "sha256": pl.String,  # of the image's bytes: what the embedding cache is keyed by
    "prompt": pl.String,
    "seed": pl.Int64,
    "group": pl.String,  # the prompt, else the image's folder ("." at the top)
    "pair_key": pl.String,  # equal for the images of two sets that should be compared
    "prompt_source": pl.String,  # "jsonl", "txt" or null
}
PROBLEMS: dict[str, pl.DataType] = {
    "source": pl.String,
    "path": pl.String,
    "reason": pl.String,
    "detail": pl.String,
}
PROBLEM_REASONS = (*REASONS, "bad_prompt")
PROMPT_FILES = ("prompts.jsonl", "metadata.jsonl")
_FILE_KEYS = ("file", "file_name", "image")
_PROMPT_KEYS = ("prompt", "text", "caption")
_PROMPTS = {"source": pl.String, "prompt": pl.String, "seed": pl.Int64}
_INT64 = (-(2**63), 2**63 - 1)
_EXT = r"\.[^./]+$"


def check_name(name: str) -> str:
    """`name` if it can name a set (it becomes a folder and a key), else ValueError."""
    if not NAME.match(name):
        raise ValueError(
            f"{name!r} is not a valid set name: use 1 to 64 letters, digits, '.', '_' or '-', "
            "not starting with '.' or '-'"
        )
    return name


def name_for(path: Path) -> str:
    """A valid set name from a folder's name: `step 1000 (ema)` gives `step-1000-ema`."""
    # abspath, not resolve: "." names the current folder, and a symlink keeps its own name.
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(os.path.abspath(path)).name)
    name = name.strip(".-")[:64].rstrip(".-")
    if not name:
        raise ValueError(f"no set name can be made from the folder name of {str(path)!r}")
    return check_name(name)


def _directory(root: Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise ValueError(f"evaluation set folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise ValueError(f"evaluation set {str(root)!r} is not a folder")
    return root.resolve()


def _files(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every file under `root` (relative posix path) with its stat; ones that vanish while
    listed are left out: they are gone."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                found.append((Path(path).relative_to(root).as_posix(), os.stat(path)))
            except OSError:
                continue
    return found


def signature(root: Path) -> str:
    """A hash of every file's path, size and mtime under `root`: it changes when a file is
    added, removed, renamed, resized or modified. Stat only, no file is read."""
    digest = hashlib.sha256()
    for rel, st in sorted(_files(_directory(root))):
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def newest_change(root: Path) -> float:
    """The newest mtime (seconds) of `root` and every file and folder under it: a set still
    being written keeps moving it (a removal shows only on its folder's mtime)."""
    root = _directory(root)
    newest = root.stat().st_mtime
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            try:
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime)
            except OSError:
                continue
    return newest


def _found(root: Path) -> pl.DataFrame:
    """given_images' rows with `source` relative to `root`."""
    located = given_images([root]).drop("image_key")
    return located.with_columns(pl.col("source").str.strip_prefix(f"{root}/")).sort("source")


def _sha256(where: tuple[str, int, int]) -> tuple[str | None, str, str]:
    """sha256 of one image's bytes, or the reason they cannot be read and its detail."""
    path, offset, length = where
    try:
        data = read_bytes(Path(path), offset, length)
    except Unusable as e:
        return None, e.reason, e.detail
    except OSError as e:  # permission denied, an I/O error: the file is there but unreadable
        return None, "corrupt", f"{type(e).__name__}: {e}"
    if not data:
        return None, "empty", ""
    if len(data) < length:  # a tar shard cut short inside this member
        return None, "truncated", f"{len(data)} of {length} bytes"
    return hashlib.sha256(data).hexdigest(), "", ""


def _hashed(found: pl.DataFrame, threads: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`found` with sha256, and the problems of those whose bytes could not be read."""
    wheres = found.select("path", "offset", "length").rows()
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(_sha256, wheres))
    hashed = found.with_columns(
        pl.DataFrame(
            results,
            schema={"sha256": pl.String, "reason": pl.String, "detail": pl.String},
            orient="row",
        )
    )
    problems = hashed.filter(pl.col("sha256").is_null()).select(list(PROBLEMS))
    return hashed.filter(pl.col("sha256").is_not_null()).drop("reason", "detail"), problems


def _problem(source: str, path: Path, detail: str) -> dict:
    return {"source": source, "path": str(path), "reason": "bad_prompt", "detail": detail}


def _first(entry: dict, keys: tuple[str, ...]) -> tuple[str | None, object]:
    key = next((k for k in keys if k in entry), None)
    return key, (entry[key] if key else None)


def _line(entry: object, folder: str) -> tuple[dict | None, str]:
    """One jsonl line as (source, prompt, seed), or None and what is wrong with it."""
    if not isinstance(entry, dict):
        return None, "not a JSON object"
    file_key, file = _first(entry, _FILE_KEYS)
    prompt_key, prompt = _first(entry, _PROMPT_KEYS)
    seed = entry.get("seed")
    if file_key is None:
        return None, f"no image named: needs one of {', '.join(_FILE_KEYS)}"
    if not isinstance(file, str) or not file:
        return None, f"{file_key} is not a file name: {file!r}"
    if prompt_key is None:
        return None, f"no prompt given: needs one of {', '.join(_PROMPT_KEYS)}"
    if prompt is not None and not isinstance(prompt, str):
        return None, f"{prompt_key} is not text: {prompt!r}"
    # bool is an int to Python, not a seed to anyone.
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return None, f"seed is not an integer: {seed!r}"
    if seed is not None and not _INT64[0] <= seed <= _INT64[1]:
        return None, f"seed {seed} does not fit in 64 signed bits"
    source = os.path.normpath(os.path.join(folder, file)).replace(os.sep, "/")
    prompt = (prompt or "").strip() or None  # empty prompt text is no prompt
    return {"source": source, "prompt": prompt, "seed": seed}, ""


def _jsonl(root: Path, path: Path) -> tuple[list[dict], list[dict]]:
    """The usable lines of one prompts file (with `where`: `<file>:<line>`), and problems."""
    rel = path.relative_to(root).as_posix()
    folder = path.parent.relative_to(root).as_posix()
    lines, problems = [], []
    try:
        raw_lines = path.read_bytes().splitlines()
    except OSError as e:
        return [], [_problem(rel, path, f"cannot be read: {type(e).__name__}: {e}")]
    for number, raw in enumerate(raw_lines, 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError as e:  # bad JSON, or bytes that are not text
            problems.append(_problem(f"{rel}:{number}", path, f"not valid JSON: {e}"))
            continue
        line, wrong = _line(entry, folder)
        if line is None:
            problems.append(_problem(f"{rel}:{number}", path, wrong))
        else:
            lines.append({**line, "where": f"{rel}:{number}", "path": str(path)})
    return lines, problems


def _jsonl_prompts(root: Path, sources: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One prompt per image named by the prompts files, and the problems of the lines."""
    files = sorted(p for p in root.rglob("*.jsonl") if p.name in PROMPT_FILES and p.is_file())
    read = [_jsonl(root, p) for p in files]
    problems = pl.DataFrame([p for _, ps in read for p in ps], schema=PROBLEMS)
    schema = {**_PROMPTS, "where": pl.String, "path": pl.String}
    lines = pl.DataFrame([line for ls, _ in read for line in ls], schema=schema)
    named = pl.col("source").is_in(sources.implode())
    strays = lines.filter(~named).select(
        source="where",
        path="path",
        reason=pl.lit("bad_prompt"),
        detail=pl.lit("names ") + pl.col("source") + pl.lit(", not an image of this set"),
    )
    lines = lines.filter(named)
    agree = pl.all_horizontal(
        pl.col(c).eq_missing(pl.col(c).first().over("source")) for c in ("prompt", "seed")
    )
    # Lines are in file then line order, so the first of an image's lines is the one kept.
    clashes = lines.with_columns(winner=pl.col("where").first().over("source")).filter(~agree)
    clashes = clashes.select(
        source="where",
        path="path",
        reason=pl.lit("bad_prompt"),
        detail=pl.format("{} was already given another prompt or seed by {}", "source", "winner"),
    )
    prompts = lines.unique("source", keep="first", maintain_order=True).select(list(_PROMPTS))
    line = pl.col("source").str.extract(r":(\d+)$").cast(pl.Int64)
    problems = pl.concat([problems, strays, clashes]).cast(PROBLEMS)
    return prompts, problems.sort("path", line, maintain_order=True)


def _sidecar(root: Path, rel: str) -> tuple[str | None, dict | None]:
    """The stripped text of one sidecar txt (None when empty), or its problem."""
    path = root / rel
    try:
        return path.read_text(encoding="utf-8").strip() or None, None
    except (OSError, UnicodeDecodeError) as e:
        return None, _problem(rel, path, f"sidecar cannot be read: {type(e).__name__}: {e}")


def _txt_prompts(root: Path, found: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The prompt of each loose image that has a `<same stem>.txt` beside it."""
    txts = [p.relative_to(root).as_posix() for p in root.rglob("*.txt") if p.is_file()]
    wanted = found.filter(pl.col("offset") < 0).select(
        "source", txt=pl.col("source").str.replace(_EXT, ".txt")
    )
    wanted = wanted.filter(pl.col("txt").is_in(pl.Series(txts, dtype=pl.String).implode()))
    read = [_sidecar(root, rel) for rel in wanted["txt"]]
    prompts = wanted.select("source", prompt=pl.Series([text for text, _ in read], dtype=pl.String))
    problems = pl.DataFrame([p for _, p in read if p], schema=PROBLEMS)
    return prompts, problems


def _described(hashed: pl.DataFrame, jsonl: pl.DataFrame, txt: pl.DataFrame) -> pl.DataFrame:
    """Images with prompt, seed, group and pair_key: a jsonl prompt before a sidecar's."""
    joined = hashed.join(jsonl, on="source", how="left").join(
        txt.rename({"prompt": "txt_prompt"}), on="source", how="left"
    )
    prompt_source = (
        pl.when(pl.col("prompt").is_not_null())
        .then(pl.lit("jsonl"))
        .when(pl.col("txt_prompt").is_not_null())
        .then(pl.lit("txt"))
    )
    joined = joined.with_columns(
        prompt_source=prompt_source, prompt=pl.coalesce("prompt", "txt_prompt")
    )
    folder = pl.col("source").str.extract(r"^(.*)/[^/]*$").fill_null(".")
    both = pl.col("prompt").is_not_null() & pl.col("seed").is_not_null()
    pair_key = (
        pl.when(both)
        .then(pl.format("seed={} prompt={}", "seed", "prompt"))
        .otherwise(pl.col("source").str.replace(_EXT, ""))
    )
    return joined.with_columns(group=pl.coalesce("prompt", folder), pair_key=pair_key)


def find_set(root: Path, hash_threads: int = 8) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(images, problems) of the evaluation set under `root`: IMAGES rows sorted by source,
    and PROBLEMS rows for the images that cannot be read and the prompts that cannot be used."""
    root = _directory(root)
    found = _found(root)
    hashed, unreadable = _hashed(found, hash_threads)
    jsonl, bad_lines = _jsonl_prompts(root, found["source"])
    txt, bad_txts = _txt_prompts(root, found)
    images = _described(hashed, jsonl, txt).select(list(IMAGES)).cast(IMAGES).sort("source")
    problems = pl.concat([unreadable.cast(PROBLEMS), bad_lines, bad_txts])
    return images, problems
