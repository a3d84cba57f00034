"""Tag vocabularies of the demo sites, spelled the way each site spells them.

Danbooru and Gelbooru share Danbooru's tags; e621 has its own (species, `_(artwork)` meta
tags); Philomena sites write tags with spaces and put the rating and the artist in tags.
Weights are rough popularity: the demo draws tags with them, so common tags stay common.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Character:
    name: str
    copyrights: tuple[str, ...]
    popularity: float  # 0..1, drives the content bias of booru scores


@dataclass(frozen=True)
class Vocabulary:
    general: tuple[str, ...]
    general_weights: tuple[float, ...]
    questionable: tuple[str, ...]
    explicit: tuple[str, ...]
    characters: tuple[Character, ...]
    original: str  # the copyright tag of posts with no franchise
    meta: tuple[str, ...]
    species: tuple[str, ...] = ()
    style_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rating_tags: dict[str, str] = field(default_factory=dict)


def _weights(tags: tuple[str, ...]) -> tuple[float, ...]:
    # Zipf-like: the order of the list is the order of popularity.
    return tuple(1.0 / (rank + 1) ** 0.8 for rank in range(len(tags)))


_DANBOORU_GENERAL = (
    "1girl",
    "solo",
    "long_hair",
    "looking_at_viewer",
    "blush",
    "smile",
    "open_mouth",
    "short_hair",
    "blue_eyes",
    "simple_background",
    "shirt",
    "skirt",
    "bangs",
    "brown_hair",
    "hair_ornament",
    "red_eyes",
    "white_background",
    "long_sleeves",
    "holding",
    "black_hair",
    "dress",
    "blonde_hair",
    "closed_mouth",
    "hat",
    "1boy",
    "ribbon",
    "bow",
    "gloves",
    "jewelry",
    "upper_body",
    "animal_ears",
    "multiple_girls",
    "standing",
    "full_body",
    "hair_between_eyes",
    "sitting",
    "jacket",
    "twintails",
    "ponytail",
    "tail",
    "outdoors",
    "sky",
    "day",
    "cloud",
    "flower",
    "tree",
    "school_uniform",
    "thighhighs",
    "food",
    "2girls",
    "indoors",
    "night",
    "star_(sky)",
    "water",
    "wings",
    "weapon",
    "sword",
    "cowboy_shot",
    "from_side",
    "portrait",
    "scenery",
    "no_humans",
    "window",
    "book",
    "cup",
    "umbrella",
    "rain",
    "snow",
    "cat",
    "petals",
    "headphones",
    "glasses",
)
_DANBOORU_CHARACTERS = (
    Character("hatsune_miku", ("vocaloid",), 1.0),
    Character("hakurei_reimu", ("touhou",), 0.9),
    Character("kirisame_marisa", ("touhou",), 0.85),
    Character("artoria_pendragon_(fate)", ("fate/grand_order", "fate_(series)"), 0.8),
    Character("raiden_shogun", ("genshin_impact",), 0.8),
    Character("makima_(chainsaw_man)", ("chainsaw_man",), 0.8),
    Character("houshou_marine", ("hololive",), 0.75),
    Character("frieren", ("sousou_no_frieren",), 0.7),
    Character("gawr_gura", ("hololive", "hololive_english"), 0.7),
    Character("souryuu_asuka_langley", ("neon_genesis_evangelion",), 0.7),
    Character("flandre_scarlet", ("touhou",), 0.65),
    Character("remilia_scarlet", ("touhou",), 0.6),
    Character("rem_(re:zero)", ("re:zero_kara_hajimeru_isekai_seikatsu",), 0.6),
    Character("lumine_(genshin_impact)", ("genshin_impact",), 0.6),
    Character("ayanami_rei", ("neon_genesis_evangelion",), 0.6),
    Character("izayoi_sakuya", ("touhou",), 0.55),
    Character("yor_briar", ("spy_x_family",), 0.5),
    Character("pikachu", ("pokemon",), 0.5),
    Character("kafuu_chino", ("gochuumon_wa_usagi_desu_ka?",), 0.4),
    Character("amiya_(arknights)", ("arknights",), 0.4),
    Character("eyjafjalla_(arknights)", ("arknights",), 0.3),
    Character("kagiyama_hina", ("touhou",), 0.2),
)
_DANBOORU = Vocabulary(
    general=_DANBOORU_GENERAL,
    general_weights=_weights(_DANBOORU_GENERAL),
    questionable=(
        "cleavage",
        "large_breasts",
        "swimsuit",
        "bikini",
        "underwear",
        "panties",
        "thighs",
        "midriff",
        "navel",
        "bare_shoulders",
    ),
    explicit=("nude", "completely_nude", "nipples", "breasts", "sex", "spread_legs", "navel"),
    characters=_DANBOORU_CHARACTERS,
    original="original",
    meta=(
        "highres",
        "absurdres",
        "commentary",
        "commentary_request",
        "translated",
        "english_commentary",
        "bad_id",
        "bad_pixiv_id",
        "official_art",
        "artist_name",
        "signature",
        "watermark",
        "dated",
    ),
    style_tags={
        "photo": ("photorealistic", "photo_(medium)", "realistic"),
        "lineart": ("lineart", "sketch"),
        "monochrome": ("monochrome", "greyscale"),
        "pixel_art": ("pixel_art",),
        "comic": ("comic", "4koma"),
        "3d": ("3d",),
        "traditional": ("traditional_media", "watercolor_(medium)"),
        "flat": (),
    },
)

_E621_GENERAL = (
    "anthro",
    "female",
    "solo",
    "male",
    "fur",
    "clothing",
    "clothed",
    "hair",
    "smile",
    "looking_at_viewer",
    "simple_background",
    "tail",
    "open_mouth",
    "5_fingers",
    "fingers",
    "white_background",
    "blue_eyes",
    "standing",
    "duo",
    "feral",
    "teeth",
    "tongue",
    "claws",
    "eyes_closed",
    "green_eyes",
    "text",
    "outside",
    "sky",
    "grass",
    "tree",
    "plant",
    "detailed_background",
    "wings",
    "horn",
    "scales",
    "whiskers",
    "paws",
    "blush",
    "sitting",
    "night",
    "moon",
    "cloud",
    "water",
    "fire",
    "markings",
    "red_eyes",
    "gloves",
    "topwear",
    "bottomwear",
    "shirt",
    "hat",
    "eyewear",
    "glasses",
)
_E621 = Vocabulary(
    general=_E621_GENERAL,
    general_weights=_weights(_E621_GENERAL),
    questionable=("breasts", "underwear", "bulge", "butt", "cleavage", "swimwear", "thick_thighs"),
    explicit=("nude", "genitals", "nipples", "breasts", "sex", "penetration", "pussy"),
    characters=(
        Character("krystal_(star_fox)", ("star_fox", "nintendo"), 0.9),
        Character("loona_(helluva_boss)", ("helluva_boss",), 0.85),
        Character("judy_hopps", ("disney", "zootopia"), 0.8),
        Character("lucario", ("pokemon", "nintendo"), 0.8),
        Character("renamon", ("digimon",), 0.75),
        Character("nick_wilde", ("disney", "zootopia"), 0.7),
        Character("toriel", ("undertale",), 0.6),
        Character("legoshi_(beastars)", ("beastars",), 0.5),
        Character("fox_mccloud", ("star_fox", "nintendo"), 0.5),
        Character("daz_(zenfry)", (), 0.1),
    ),
    original="",
    meta=(
        "hi_res",
        "absurd_res",
        "digital_media_(artwork)",
        "digital_drawing_(artwork)",
        "portrait",
        "full-length_portrait",
        "signature",
        "url",
        "watermark",
    ),
    species=(
        "mammal",
        "canid",
        "canine",
        "fox",
        "canis",
        "wolf",
        "dragon",
        "felid",
        "feline",
        "reptile",
        "scalie",
        "avian",
        "bird",
        "equid",
        "equine",
        "horse",
        "lagomorph",
        "leporid",
        "rabbit",
        "hybrid",
        "pokemon_(species)",
    ),
    style_tags={
        "photo": ("photography_(artwork)",),
        "lineart": ("line_art", "sketch"),
        "monochrome": ("monochrome", "greyscale"),
        "pixel_art": ("pixel_(artwork)",),
        "comic": ("comic",),
        "3d": ("3d_(artwork)", "digital_media_(artwork)"),
        "traditional": ("traditional_media_(artwork)", "watercolor_(artwork)"),
        "flat": (),
    },
)

_PHILOMENA_GENERAL = (
    "female",
    "mare",
    "solo",
    "pony",
    "cute",
    "smiling",
    "looking at you",
    "open mouth",
    "simple background",
    "white background",
    "transparent background",
    "high res",
    "blushing",
    "eyes closed",
    "wings",
    "horn",
    "filly",
    "grass",
    "sky",
    "flying",
    "bed",
    "stallion",
    "male",
    "duo",
    "heart",
    "hoof shoes",
    "tail",
    "flower",
    "clothes",
    "hat",
    "scarf",
    "sweater",
    "glasses",
    "bust",
    "portrait",
    "happy",
    "sitting",
    "lying down",
)
_DERPIBOORU = Vocabulary(
    general=_PHILOMENA_GENERAL,
    general_weights=_weights(_PHILOMENA_GENERAL),
    questionable=("suggestive pose", "cleavage", "underhoof", "bedroom eyes", "butt", "stockings"),
    explicit=("nudity", "vulva", "nipples", "sex", "anatomically correct"),
    characters=(
        Character("twilight sparkle", ("g4",), 0.9),
        Character("rainbow dash", ("g4",), 0.85),
        Character("fluttershy", ("g4",), 0.85),
        Character("princess luna", ("g4",), 0.8),
        Character("pinkie pie", ("g4",), 0.75),
        Character("rarity", ("g4",), 0.7),
        Character("princess celestia", ("g4",), 0.7),
        Character("applejack", ("g4",), 0.6),
        Character("starlight glimmer", ("g4",), 0.5),
        Character("oc:fluffle puff", (), 0.2),
    ),
    original="oc",
    meta=("high res", "absurd res", "signature", "dialogue", "animated", "edit"),
    species=("pony", "alicorn", "pegasus", "unicorn", "earth pony", "bat pony", "griffon"),
    style_tags={
        "photo": ("photo", "irl"),
        "lineart": ("lineart", "sketch"),
        "monochrome": ("monochrome", "grayscale"),
        "pixel_art": ("pixel art",),
        "comic": ("comic",),
        "3d": ("3d", "source filmmaker"),
        "traditional": ("traditional art", "watercolor painting"),
        "flat": ("vector",),
    },
    rating_tags={"g": "safe", "s": "suggestive", "q": "questionable", "e": "explicit"},
)

PHILOMENA_DARK_TAGS = ("semi-grimdark", "grimdark", "grotesque")

VOCABULARIES: dict[str, Vocabulary] = {
    "danbooru": _DANBOORU,
    "gelbooru": _DANBOORU,
    "e621": _E621,
    "derpibooru": _DERPIBOORU,
}

_SYLLABLES = (
    "ka",
    "ki",
    "ku",
    "ko",
    "sa",
    "shi",
    "su",
    "ta",
    "chi",
    "na",
    "ni",
    "no",
    "ha",
    "hi",
    "mi",
    "mo",
    "ya",
    "yu",
    "ra",
    "ri",
    "ru",
    "ro",
    "wa",
    "zen",
    "fry",
    "lux",
    "ven",
    "dor",
)


def artist_names(site: str, count: int, rng) -> list[str]:
    """Invented artist names in the site's spelling, unique within the site."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        parts = rng.choice(_SYLLABLES, size=rng.integers(2, 5))
        name = "".join(parts)
        if rng.random() < 0.3:
            name += f"_{rng.integers(1, 99)}"
        if name in seen:
            continue
        seen.add(name)
        names.append(f"artist:{name}" if site == "derpibooru" else name)
    return names
