"""Caption vocabularies: which quality tags a caption carries, and the rule behind each, as
data (a TOML file), so Pony's score tags, Animagine's and NoobAI's quality, aesthetic and
period tags, or a user's own, are all written by the same code.

A vocabulary names tag families and places them, with the rating and source tags, in the
caption's fixed prefix (before the post's own tags, counted by keep_tokens) or its suffix
(after them):

    name = "animagine"
    prefix = ["rating"]
    suffix = ["quality", "aesthetic", "period"]

    [families.quality]
    column = "popularity"          # what the rule reads: see COLUMNS
    cuts = "percentile"            # percentile: `above` are percentiles of the column
    tags = ["masterpiece", "best quality", ..., "worst quality"]   # best first
    above = [0.95, 0.85, ...]      # tags[i] where the value lies above above[i] (and at or
                                   # below above[i-1]); the last tag at or below every one

A tag may be "" (no tag in that range), and a post whose value is missing (no date, no
popularity yet) gets none from the family. The `bucket` column is the head's score bucket
under its frozen calibration (assets/captions/buckets.py): `tag = "score_{n}"`, with
`up = "score_{n}_up"` for V6's cumulative tags down to the minimum bucket.

Percentile cut-points are worked out once per head, like the buckets' (families.py), so
tags do not move as the catalog grows.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHIPPED_DIR = Path(__file__).parent / "vocabularies"
# The Pony styles' names before vocabularies were data.
ALIASES = {"v6": "pony-v6", "v7": "pony-v7"}
COLUMNS = {
    "bucket": "the head's score bucket 1..9 under its frozen calibration",
    "popularity": "the post's normalized booru popularity, cut within its site and rating",
    "score": "the active head's score in [0, 1]",
    "percentile": "the active head's percentile of the post within the catalog, in [0, 1]",
    "year": "the year the post was made (UTC)",
}
CUTS = ("percentile", "absolute")
PLACES = ("rating", "source")  # the rating tag and the source tag, placed like families


class VocabularyError(ValueError):
    """A vocabulary file that cannot be used, and why."""


@dataclass(frozen=True)
class Family:
    """One tag family and its rule."""

    name: str
    column: str
    tags: tuple[str, ...] = ()
    above: tuple[float, ...] = ()
    cuts: str = "absolute"
    tag: str = ""  # bucket families: the template of bucket n's tag
    up: str = ""  # bucket families: the template of the tags of the buckets below, or none

    @property
    def bucketed(self) -> bool:
        return self.column == "bucket"

    @property
    def grouped(self) -> bool:
        """Cut within each site and rating (popularity means something else on each)."""
        return self.column == "popularity"

    def rule(self) -> dict[str, Any]:
        """What decides which post gets which tag (not the tags' spelling)."""
        return {"column": self.column, "cuts": self.cuts, "above": list(self.above)}

    def describe(self) -> dict[str, Any]:
        if self.bucketed:
            return {"column": self.column, "tag": self.tag, "up": self.up}
        return {**self.rule(), "tags": list(self.tags)}

    def words(self) -> list[str]:
        """Every tag the family can write (bucket families: for buckets 1..9)."""
        if self.bucketed:
            return [self.tag.format(n=n) for n in range(1, 10)]
        return [t for t in self.tags if t]


@dataclass(frozen=True)
class Vocabulary:
    """Tag families and where each goes: `prefix` and `suffix` list family names, "rating"
    and "source" in caption order."""

    name: str
    families: Mapping[str, Family]
    prefix: tuple[str, ...]
    suffix: tuple[str, ...] = ()
    rating_tags: Mapping[str, str] = field(default_factory=dict)  # empty: [captions]'
    description: str = ""
    follows: tuple[str, ...] = ()

    @property
    def bucket_family(self) -> Family | None:
        return next((f for f in self.families.values() if f.bucketed), None)

    def placed(self, where: str) -> list[Family | str]:
        """The families (or "rating", "source") of the prefix or suffix, in order."""
        names = self.prefix if where == "prefix" else self.suffix
        return [n if n in PLACES else self.families[n] for n in names]

    def cut_families(self) -> list[Family]:
        """The families cut by value (every one but the bucket family), in caption order."""
        return [
            f
            for f in self.placed("prefix") + self.placed("suffix")
            if isinstance(f, Family) and not f.bucketed
        ]

    def describe(self) -> dict[str, Any]:
        """The whole definition: a manifest keeps it, and `from_description` reads it back."""
        return {
            "name": self.name,
            "description": self.description,
            "follows": list(self.follows),
            "prefix": list(self.prefix),
            "suffix": list(self.suffix),
            "rating_tags": dict(self.rating_tags),
            "families": {name: f.describe() for name, f in self.families.items()},
        }

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()


def shipped() -> list[str]:
    """The names of the vocabularies that ship with scoretag."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))


def resolve(style: str) -> Vocabulary:
    """The vocabulary a `style` names: a shipped one (or its old Pony alias) or a TOML file."""
    name = ALIASES.get(style, style)
    path = SHIPPED_DIR / f"{name}.toml"
    if path.is_file():
        return load(path)
    given = Path(style).expanduser()
    if given.suffix == ".toml" or given.is_file():
        if not given.is_file():
            raise VocabularyError(f"no vocabulary file {given}")
        return load(given)
    raise VocabularyError(
        f"unknown caption style {style!r}: choose {', '.join(shipped())} "
        f"(or {', '.join(ALIASES)}), or give a vocabulary .toml file"
    )


def load(path: Path) -> Vocabulary:
    """A vocabulary from its TOML file; VocabularyError naming the file and the problem."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise VocabularyError(f"{path}: cannot read the vocabulary: {e}") from e
    try:
        return from_description({"name": Path(path).stem, **raw})
    except VocabularyError as e:
        raise VocabularyError(f"{path}: {e}") from None


def from_description(raw: Mapping[str, Any]) -> Vocabulary:
    """A vocabulary from its definition (a TOML file's tables, or `describe()`'s dict)."""
    known = {"name", "description", "follows", "prefix", "suffix", "rating_tags", "families"}
    unknown = set(raw) - known
    if unknown:
        raise VocabularyError(f"unknown keys {sorted(unknown)}: a vocabulary has {sorted(known)}")
    families_raw = raw.get("families", {})
    if not isinstance(families_raw, Mapping):
        raise VocabularyError("`families` must be a table of families")
    families = {name: _family(name, spec) for name, spec in families_raw.items()}
    prefix = _names(raw.get("prefix", []), "prefix")
    suffix = _names(raw.get("suffix", []), "suffix")
    placed = prefix + suffix
    for name in placed:
        if name not in families and name not in PLACES:
            raise VocabularyError(f"{name!r} is placed but no family of that name is defined")
    repeated = sorted({n for n in placed if placed.count(n) > 1})
    if repeated:
        raise VocabularyError(f"{repeated} placed more than once")
    unplaced = sorted(set(families) - set(placed))
    if unplaced:
        raise VocabularyError(f"families {unplaced} are defined but placed nowhere")
    if "rating" not in placed:
        raise VocabularyError('place "rating" in the prefix or suffix: every caption has one')
    buckets = [f.name for f in families.values() if f.bucketed]
    if len(buckets) > 1 or any(families[b].name in suffix for b in buckets):
        raise VocabularyError("at most one bucket family, and in the prefix")
    rating_tags = raw.get("rating_tags", {})
    if not isinstance(rating_tags, Mapping) or not all(
        isinstance(v, str) and v for v in rating_tags.values()
    ):
        raise VocabularyError("`rating_tags` maps ratings (g, s, q, e) to non-empty tags")
    return Vocabulary(
        name=str(raw["name"]),
        families=families,
        prefix=tuple(prefix),
        suffix=tuple(suffix),
        rating_tags=dict(rating_tags),
        description=str(raw.get("description", "")),
        follows=tuple(raw.get("follows", ())),
    )


def _names(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise VocabularyError(f"`{what}` must be a list of family names")
    return list(value)


def _family(name: str, spec: Any) -> Family:
    if not isinstance(spec, Mapping):
        raise VocabularyError(f"family {name!r} must be a table")
    if name in PLACES:
        raise VocabularyError(f"{name!r} names the {name} tag: give the family another name")
    column = spec.get("column")
    if column not in COLUMNS:
        raise VocabularyError(f"family {name!r}: column must be one of {', '.join(COLUMNS)}")
    if column == "bucket":
        extra = set(spec) - {"column", "tag", "up"}
        tag, up = spec.get("tag", ""), spec.get("up", "")
        if extra or "{n}" not in tag or (up and "{n}" not in up):
            raise VocabularyError(
                f"family {name!r}: a bucket family has `tag` (and optionally `up`), each with "
                "{n} where the bucket goes"
            )
        return Family(name, column, tag=tag, up=up)
    extra = set(spec) - {"column", "cuts", "tags", "above"}
    if extra:
        raise VocabularyError(f"family {name!r}: unknown keys {sorted(extra)}")
    tags = spec.get("tags")
    above = spec.get("above")
    cuts = spec.get("cuts", "absolute")
    if not isinstance(tags, list) or len(tags) < 2 or not all(isinstance(t, str) for t in tags):
        raise VocabularyError(f"family {name!r}: `tags` must list two tags or more, best first")
    if not any(tags):
        raise VocabularyError(f"family {name!r}: every tag is empty")
    if (
        not isinstance(above, list)
        or len(above) != len(tags) - 1
        or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in above)
    ):
        raise VocabularyError(
            f"family {name!r}: `above` must give {len(tags) - 1} numbers, one per tag but the "
            "last (where that tag's range starts)"
        )
    if any(b >= a for a, b in zip(above, above[1:], strict=False)):
        raise VocabularyError(f"family {name!r}: `above` must fall strictly, best tag first")
    if cuts not in CUTS:
        raise VocabularyError(f"family {name!r}: cuts must be {' or '.join(CUTS)}")
    if cuts == "percentile" and not all(0 < a < 1 for a in above):
        raise VocabularyError(f"family {name!r}: percentile cut-points lie in (0, 1)")
    return Family(name, column, tags=tuple(tags), above=tuple(float(a) for a in above), cuts=cuts)
