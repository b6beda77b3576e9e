"""Load, validate and split the labeled corpus.

A corpus directory holds `taxonomy.toml` (label sets and actor aliases) and any
number of `*.jsonl` files, one labeled section per line:

    {"id": "...", "text": "...", "heading": "..."?, "doc": "..."?,
     "register": "..."?, "lang": "uk"?, "basis": "invented",
     "topics": [...], "stances": {"actor": "stance"}}

`basis` says what a section retells: `invented` (a made-up event, perhaps with real
actors) or `real_event` (something that happened, retold in our own words). `lang`
is the ISO 639-1 code of the text (default: the taxonomy's first language); each
language's aliases, cue words and keywords live in `languages/<code>.toml` next to
the taxonomy.

Sections that share a `doc` form one multi-section document, in file order.
Run `python -m training.dataset check training/data` to validate a corpus.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from topicstance.actors import ACTOR_LISTS, ActorMatcher
from topicstance.documents.rules import TABLES, pattern_problems

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KNOWN_FIELDS = {"id", "text", "heading", "doc", "register", "lang", "basis", "topics", "stances"}
BASES = ("invented", "real_event")
LANGUAGE_DIRECTORY = "languages"
MIN_WORDS, MAX_WORDS = 5, 300
NEAR_DUPLICATE_COSINE = 0.9
HELD_OUT_SHARE = 0.2
DOCUMENT_STRATUM = "document"


class DataError(Exception):
    """Raised with every problem found, one per line, so all can be fixed at once."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Taxonomy:
    """Label sets and actor alias lists: data, never code."""

    topics: tuple[str, ...]
    none_topic: str
    stances: tuple[str, ...]
    actors: dict[str, dict[str, list[str]]]
    source_sha256: str
    neutral_stance: str | None = None
    stance_cues: dict[str, list[str]] = field(default_factory=dict)
    topic_keywords: dict[str, list[str]] = field(default_factory=dict)
    languages: tuple[str, ...] = ("en",)
    quotes: dict[str, list[str]] = field(default_factory=dict)
    topic_actors: dict[str, list[str]] = field(default_factory=dict)
    # Per language code: its name and the boilerplate of pages written in it.
    language_data: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def actor_names(self) -> tuple[str, ...]:
        return tuple(self.actors)

    def matcher(self) -> ActorMatcher:
        return ActorMatcher.from_config(self.actors)


@dataclass(frozen=True)
class Section:
    """One labeled section, with where it came from for error messages."""

    id: str
    text: str
    heading: str
    topics: tuple[str, ...]
    stances: dict[str, str]
    doc: str | None = None
    register: str | None = None
    source: str = ""
    lang: str = "en"
    basis: str = "invented"

    @property
    def full_text(self) -> str:
        """What the model reads: the heading line, then the paragraphs."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    @property
    def group(self) -> str:
        """The unit of the held-out split: a whole document, or the section itself."""
        return self.doc or self.id

    def primary_topic(self, none_topic: str) -> str:
        return self.topics[0] if self.topics else none_topic


@dataclass(frozen=True)
class LabeledQuote:
    """An actor's own words and the posture they show: what the quote head learns from."""

    id: str
    lang: str
    speaker: str
    text: str
    stance: str


QUOTES_DIRECTORY = "quotes"
QUOTE_FIELDS = {"id", "lang", "speaker", "quote", "stance"}


@dataclass
class Corpus:
    """A validated corpus, its labeled quotes (if any) and the taxonomy it was labeled with."""

    taxonomy: Taxonomy
    sections: list[Section]
    files: list[Path] = field(default_factory=list)
    quotes: list[LabeledQuote] = field(default_factory=list)
    quote_files: list[Path] = field(default_factory=list)

    def sha256(self) -> str:
        """Hash of the taxonomy and every data file, in name order."""
        digest = hashlib.sha256(self.taxonomy.source_sha256.encode())
        for path in [*self.files, *self.quote_files]:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()


def _read_config(path: Path) -> tuple[dict[str, Any], bytes]:
    """A taxonomy file as a mapping: TOML, or YAML for .yaml/.yml files."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError([f"{path}: cannot read the taxonomy: {exc.strerror}"]) from exc
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            config = yaml.safe_load(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DataError([f"{path}: not valid YAML: {exc}"]) from exc
    else:
        try:
            config = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DataError([f"{path}: not valid TOML: {exc}"]) from exc
    if not isinstance(config, dict):
        raise DataError([f"{path}: expected a mapping of taxonomy keys"])
    return config, raw


def load_taxonomy(path: Path) -> Taxonomy:
    """Read a taxonomy file (TOML or YAML); errors name the file and the key."""
    config, raw = _read_config(path)
    problems = []
    for key in ("topics", "stances"):
        values = config.get(key)
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) for v in values)
        ):
            problems.append(f"{path}: {key}: expected a non-empty list of strings")
    if not isinstance(config.get("none_topic"), str):
        problems.append(f"{path}: none_topic: expected a string")
    neutral = config.get("neutral_stance")
    if neutral is not None and neutral not in config.get("stances", []):
        problems.append(f"{path}: neutral_stance: expected one of the stances")
    actors = config.get("actors", {})
    if not isinstance(actors, dict):
        problems.append(f"{path}: actors: expected tables [actors.NAME] with aliases")
        actors = {}
    for name, spec in actors.items():
        aliases = spec.get("aliases") if isinstance(spec, dict) else None
        if not isinstance(aliases, list) or not aliases:
            problems.append(f"{path}: actors.{name}.aliases: expected a non-empty list")
    problems += _word_lists(config, "stance_cues", config.get("stances", []), path)
    problems += _word_lists(config, "topic_keywords", config.get("topics", []), path)
    problems += _topic_actors(config, path)
    languages = config.get("languages", ["en"])
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(code, str) and LANGUAGE_CODE.match(code) for code in languages)
    ):
        problems.append(f"{path}: languages: expected a non-empty list of ISO 639-1 codes")
        languages = ["en"]
    merged, digest = _with_languages(config, path, languages, problems)
    problems += _name_guard_problems(merged["actors"], path)
    if problems:
        raise DataError(problems)
    return Taxonomy(
        topics=tuple(config["topics"]),
        none_topic=config["none_topic"],
        stances=tuple(config["stances"]),
        actors=merged["actors"],
        source_sha256=digest(raw),
        neutral_stance=config.get("neutral_stance"),
        stance_cues=merged["stance_cues"],
        topic_keywords=merged["topic_keywords"],
        languages=tuple(languages),
        quotes=merged["quotes"],
        topic_actors={k: list(v) for k, v in config.get("topic_actors", {}).items()},
        language_data=merged["languages"],
    )


LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")
# Word lists a language file may extend, and the label set that keys each.
LANGUAGE_LISTS = {"stance_cues": "stances", "topic_keywords": "topics"}
# Word lists for attributing quotes (`[quotes]`): keys and what they hold.
QUOTE_LISTS = ("speech_verbs", "pronouns", "first_person")


def _with_languages(
    config: dict[str, Any], path: Path, extra: Sequence[str], problems: list[str]
) -> tuple[dict[str, Any], Any]:
    """The taxonomy's actor aliases and word lists extended by each language's file
    (`languages/<code>.toml` next to the taxonomy; optional for the first language,
    whose words are in the taxonomy itself), the languages' names and boilerplate
    patterns, and a hash over all of them."""
    actors = {
        name: {key: list(spec.get(key, [])) for key in ACTOR_LISTS}
        for name, spec in config.get("actors", {}).items()
        if isinstance(spec, dict)
    }
    lists = {key: {k: list(v) for k, v in config.get(key, {}).items()} for key in LANGUAGE_LISTS}
    quotes: dict[str, list[str]] = {key: [] for key in QUOTE_LISTS}
    _add_quote_words(quotes, config, path, problems)
    raws: list[bytes] = []
    data: dict[str, dict[str, Any]] = {}
    for index, code in enumerate(extra):
        language_path = path.parent / LANGUAGE_DIRECTORY / f"{code}.toml"
        if index == 0 and not language_path.is_file():
            data[code] = {"name": code}
            continue
        try:
            language, raw = _read_config(language_path)
        except DataError as exc:
            problems += exc.problems
            continue
        raws.append(raw)
        data[code] = _language_data(language, code, language_path, problems)
        for name, spec in language.get("actors", {}).items():
            if name not in actors or not isinstance(spec, dict):
                problems.append(f"{language_path}: actors.{name}: not an actor of {path.name}")
                continue
            for key in ACTOR_LISTS:
                actors[name][key] += list(spec.get(key, []))
        _add_name_guard(actors, language.get("name_guard", {}))
        for key, label_set in LANGUAGE_LISTS.items():
            labels = config.get(label_set, [])
            problems += _word_lists(language, key, labels, language_path)
            for label, words in language.get(key, {}).items():
                lists[key].setdefault(label, []).extend(words)
        _add_quote_words(quotes, language, language_path, problems)

    def digest(base: bytes) -> str:
        hasher = hashlib.sha256(base)
        for raw in raws:
            hasher.update(raw)
        return hasher.hexdigest()

    return {"actors": actors, **lists, "quotes": quotes, "languages": data}, digest


def _name_guard_problems(actors: dict[str, dict[str, list[str]]], path: Path) -> list[str]:
    """Every guarded name is one of the actor's aliases; every quote pair is two marks."""
    problems = [
        f"{path}: actors.{name}.names: {word!r} is not one of its aliases"
        for name, spec in actors.items()
        for word in spec["names"]
        if word not in spec["aliases"]
    ]
    problems += [
        f"{path}: name_guard.quotes: {pair!r}: expected an opening and a closing mark"
        for pair in {pair for spec in actors.values() for pair in spec["name_quotes"]}
        if len(pair) != 2
    ]
    return problems


def _add_name_guard(actors: dict[str, dict[str, list[str]]], guard: Any) -> None:
    """A language's `[name_guard]` (quote pairs, prepositions) holds for every actor."""
    for spec in actors.values():
        spec["name_quotes"] += list(guard.get("quotes", []))
        spec["name_prepositions"] += list(guard.get("prepositions", []))


def _add_quote_words(
    quotes: dict[str, list[str]], config: dict[str, Any], path: Path, problems: list[str]
) -> None:
    table = config.get("quotes", {})
    for key, words in table.items() if isinstance(table, dict) else []:
        if key not in QUOTE_LISTS or not isinstance(words, list):
            problems.append(f"{path}: quotes.{key}: expected a list for one of {list(QUOTE_LISTS)}")
            continue
        quotes[key].extend(str(w) for w in words)


def _topic_actors(config: dict[str, Any], path: Path) -> list[str]:
    """`[topic_actors]`: a topic listed only where one of its actors is mentioned."""
    table = config.get("topic_actors", {})
    if not isinstance(table, dict):
        return [f"{path}: topic_actors: expected a table of topic = [actors]"]
    actors = config.get("actors", {})
    return [
        f"{path}: topic_actors.{topic}: expected a list of actors for a topic in the taxonomy"
        for topic, names in table.items()
        if topic not in config.get("topics", [])
        or not isinstance(names, list)
        or not all(name in actors for name in names)
    ]


def _language_data(
    language: dict[str, Any], code: str, path: Path, problems: list[str]
) -> dict[str, Any]:
    """A language's name, boilerplate tables and live-blog time stamp, checked."""
    data: dict[str, Any] = {"name": str(language.get("name", code))}
    for table in TABLES:
        problems += pattern_problems(language.get(table, {}), f"{path}: {table}")
        data[table] = language.get(table, {})
    stamp = language.get("live_blog_timestamp", "")
    try:
        re.compile(stamp)
    except (re.error, TypeError) as exc:
        problems.append(f"{path}: live_blog_timestamp: expected a regular expression: {exc}")
    data["live_blog_timestamp"] = stamp
    return data


def _word_lists(config: dict[str, Any], key: str, labels: list[str], path: Path) -> list[str]:
    """An optional table of word lists, keyed by labels of the taxonomy."""
    table = config.get(key, {})
    if not isinstance(table, dict):
        return [f"{path}: {key}: expected a table of word lists"]
    return [
        f"{path}: {key}.{label}: expected a list of words for a label in {labels}"
        for label, words in table.items()
        if label not in labels
        or not isinstance(words, list)
        or not all(isinstance(w, str) for w in words)
    ]


DATA_SUFFIXES = (".jsonl", ".csv")


def data_files(path: Path) -> list[Path]:
    """A directory's labeled files (JSONL and CSV, by name), or the one file given."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in DATA_SUFFIXES)
    return [path]


def load_corpus(
    path: Path, taxonomy_path: Path | None = None, taxonomy: Taxonomy | None = None
) -> Corpus:
    """Load and validate a corpus directory (every JSONL and CSV file in it) or one file."""
    directory = path if path.is_dir() else path.parent
    if taxonomy is None:
        taxonomy = load_taxonomy(taxonomy_path or directory / "taxonomy.toml")
    if not path.exists():
        raise DataError([f"{path}: no such file or directory"])
    files = data_files(path)
    if not files:
        raise DataError([f"{directory}: no *.jsonl or *.csv files with labeled sections"])
    sections, problems = parse_files(files, taxonomy)
    problems += check_corpus(sections, taxonomy)
    quote_files = sorted((directory / QUOTES_DIRECTORY).glob("*.jsonl")) if path.is_dir() else []
    quotes = load_quotes(quote_files, taxonomy, problems)
    if problems:
        raise DataError(problems)
    return Corpus(taxonomy, sections, files, quotes, quote_files)


def load_quotes(
    files: Sequence[Path], taxonomy: Taxonomy, problems: list[str]
) -> list[LabeledQuote]:
    """Labeled quotes, one JSON object per line: {"id", "lang", "speaker", "quote",
    "stance"}; each problem names file, line and field."""
    quotes: list[LabeledQuote] = []
    seen: set[str] = set()
    for path in files:
        for where, record, error in read_records(path):
            if error or not isinstance(record, dict):
                problems.append(f"{where}: {error or 'expected a JSON object'}")
                continue
            found = _quote_problems(record, taxonomy, seen)
            problems += [f"{where}: {problem}" for problem in found]
            if not found:
                seen.add(record["id"])
                quotes.append(
                    LabeledQuote(
                        record["id"],
                        record["lang"],
                        record["speaker"],
                        record["quote"],
                        record["stance"],
                    )
                )
    return quotes


def _quote_problems(record: dict[str, Any], taxonomy: Taxonomy, seen: set[str]) -> list[str]:
    problems = [f"{key}: unknown field" for key in record if key not in QUOTE_FIELDS]
    problems += [f"{key}: missing" for key in sorted(QUOTE_FIELDS - set(record))]
    if problems:
        return problems
    if not isinstance(record["id"], str) or not ID_PATTERN.match(record["id"]):
        problems.append("id: expected 1-64 characters of letters, digits, '.', '_' or '-'")
    elif record["id"] in seen:
        problems.append(f"id: {record['id']!r} is used twice")
    if record["lang"] not in taxonomy.languages:
        problems.append(f"lang: expected one of {list(taxonomy.languages)}")
    if record["speaker"] not in taxonomy.actors:
        problems.append(f"speaker: expected one of {list(taxonomy.actors)}")
    if record["stance"] not in taxonomy.stances:
        problems.append(f"stance: expected one of {list(taxonomy.stances)}")
    if not isinstance(record["quote"], str) or len(record["quote"].split()) < 2:
        problems.append("quote: expected the quoted words (two or more)")
    return problems


def parse_files(files: Iterable[Path], taxonomy: Taxonomy) -> tuple[list[Section], list[str]]:
    """Parse records; each problem names file, line and field."""
    matcher = taxonomy.matcher()
    sections: list[Section] = []
    problems: list[str] = []
    for path in files:
        try:
            records = list(read_records(path))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
            continue
        for where, record, error in records:
            if error:
                problems.append(f"{where}: {error}")
                continue
            section, record_problems = parse_record(record, taxonomy, matcher, where)
            problems += [f"{where}: {problem}" for problem in record_problems]
            if section is not None:
                sections.append(section)
    return sections, problems


def read_records(path: Path) -> Iterator[tuple[str, Any, str]]:
    """(file:line, record, error) per record: JSON Lines, or CSV with a header row.

    CSV columns are the JSON fields; `topics` holds labels joined by `;` (primary
    first) and `stances` holds `actor=stance` pairs joined by `;`.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield f"{path}:{reader.line_num}", *_csv_record(row)
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(line), ""
            except json.JSONDecodeError as exc:
                yield f"{path}:{number}", None, f"not valid JSON: {exc.msg}"


def _csv_record(row: dict[str | Any, str | Any]) -> tuple[Any, str]:
    if None in row:
        return None, "more cells than header columns"
    record: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
    record["topics"] = [t.strip() for t in (row.get("topics") or "").split(";") if t.strip()]
    stances: dict[str, str] = {}
    for pair in (row.get("stances") or "").split(";"):
        if not pair.strip():
            continue
        actor, sep, stance = pair.partition("=")
        if not sep:
            return None, f"stances: expected actor=stance pairs joined by ';', got {pair.strip()!r}"
        stances[actor.strip()] = stance.strip()
    record["stances"] = stances
    return record, ""


def parse_record(
    record: Any, taxonomy: Taxonomy, matcher: ActorMatcher, where: str
) -> tuple[Section | None, list[str]]:
    """Check one record against the schema and the taxonomy."""
    if not isinstance(record, dict):
        return None, ["expected a JSON object"]
    problems = [f"{key}: unknown field" for key in record if key not in KNOWN_FIELDS]
    record_id, text = record.get("id"), record.get("text")
    heading = record.get("heading") or ""
    if not isinstance(record_id, str) or not ID_PATTERN.match(record_id):
        problems.append("id: expected 1-64 characters of letters, digits, '.', '_' or '-'")
    if not isinstance(text, str) or not text.strip():
        problems.append("text: expected a non-empty string")
    elif not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
        problems.append(f"text: expected {MIN_WORDS} to {MAX_WORDS} words, got {len(text.split())}")
    if not isinstance(heading, str) or "\n" in heading:
        problems.append("heading: expected a one-line string or null")
    for key in ("doc", "register"):
        if record.get(key) is not None and not isinstance(record.get(key), str):
            problems.append(f"{key}: expected a string")
    basis = record.get("basis")
    if basis not in BASES:
        problems.append(f"basis: expected one of {list(BASES)}, got {basis!r}")
    lang = record.get("lang", taxonomy.default_language)
    if lang not in taxonomy.languages:
        problems.append(
            f"lang: expected one of the taxonomy's languages {list(taxonomy.languages)}, "
            f"got {lang!r}"
        )
    topics = record.get("topics")
    if not isinstance(topics, list) or len(set(map(str, topics))) != len(topics):
        problems.append("topics: expected a list of distinct topic labels")
        topics = []
    problems += [
        f"topics: unknown label {topic!r}; expected one of {list(taxonomy.topics)}"
        for topic in topics
        if topic not in taxonomy.topics
    ]
    stances = record.get("stances")
    if not isinstance(stances, dict):
        problems.append("stances: expected an object mapping actor to stance")
        stances = {}
    problems += stance_problems(stances, taxonomy)
    if problems or not isinstance(record_id, str) or not isinstance(text, str):
        return None, problems
    section = Section(
        id=record_id,
        text=text,
        heading=heading,
        topics=tuple(topics),
        stances=dict(stances),
        doc=record.get("doc"),
        register=record.get("register"),
        source=where,
        lang=lang,
        basis=str(basis),
    )
    return section, actor_problems(section, matcher)


def stance_problems(stances: dict[str, Any], taxonomy: Taxonomy) -> list[str]:
    problems = []
    for actor, stance in stances.items():
        if actor not in taxonomy.actors:
            problems.append(
                f"stances: unknown actor {actor!r}; expected one of {list(taxonomy.actors)}"
            )
        if stance not in taxonomy.stances:
            expected = list(taxonomy.stances)
            problems.append(
                f"stances.{actor}: unknown stance {stance!r}; expected one of {expected}"
            )
    return problems


def actor_problems(section: Section, matcher: ActorMatcher) -> list[str]:
    """Stances must be given for exactly the actors the alias lists find."""
    found = matcher.actors_in(section.full_text)
    problems = [
        f"stances: {actor!r} is mentioned ({_surface(matcher, section, actor)}) but has no stance"
        for actor in found
        if actor not in section.stances
    ]
    problems += [
        f"stances: {actor!r} has a stance but no alias of it occurs in the text"
        for actor in section.stances
        if actor not in found
    ]
    return problems


def _surface(matcher: ActorMatcher, section: Section, actor: str) -> str:
    return ", ".join(sorted({m.text for m in matcher.find(section.full_text) if m.actor == actor}))


def check_corpus(sections: Sequence[Section], taxonomy: Taxonomy) -> list[str]:
    """Corpus-wide checks: unique ids, contiguous documents, no (near) duplicates."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for section in sections:
        if section.id in seen:
            problems.append(f"{section.source}: id: {section.id!r} also at {seen[section.id]}")
        seen.setdefault(section.id, section.source)
    problems += _document_problems(sections)
    problems += _duplicate_problems(sections)
    return problems


def _document_problems(sections: Sequence[Section]) -> list[str]:
    problems = []
    closed: set[str] = set()
    current: str | None = None
    for section in sections:
        if section.doc != current:
            if current is not None:
                closed.add(current)
            if section.doc in closed:
                problems.append(
                    f"{section.source}: doc: sections of {section.doc!r} must be consecutive"
                )
            current = section.doc
    return problems


def normalized(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _duplicate_problems(sections: Sequence[Section]) -> list[str]:
    """Exact duplicates, then pairs with TF-IDF cosine at or above the limit."""
    problems = []
    first: dict[str, Section] = {}
    for section in sections:
        key = normalized(section.text)
        if key in first:
            problems.append(
                f"{section.source}: text: exact duplicate of {first[key].id} ({first[key].source})"
            )
        first.setdefault(key, section)
    for a, b, cosine in near_duplicates([s.text for s in sections]):
        problems.append(
            f"{sections[b].source}: text: near duplicate of {sections[a].id} "
            f"({sections[a].source}), TF-IDF cosine {cosine:.2f} >= {NEAR_DUPLICATE_COSINE}"
        )
    return problems


def near_duplicates(texts: Sequence[str]) -> list[tuple[int, int, float]]:
    """Index pairs (a < b) whose word TF-IDF cosine reaches the limit."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(texts) < 2:
        return []
    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    similarity = (matrix @ matrix.T).tocoo()
    return sorted(
        (int(a), int(b), float(value))
        for a, b, value in zip(similarity.row, similarity.col, similarity.data, strict=True)
        if a < b and value >= NEAR_DUPLICATE_COSINE and normalized(texts[a]) != normalized(texts[b])
    )


def stratum(section: Section, taxonomy: Taxonomy, in_document: bool) -> str:
    """The primary topic, or `document`; prefixed by the language beyond the first, so
    every language is held out in proportion and adding one leaves the others' split."""
    name = DOCUMENT_STRATUM if in_document else section.primary_topic(taxonomy.none_topic)
    return name if section.lang == taxonomy.default_language else f"{section.lang}:{name}"


def group_hash(group: str) -> float:
    """A stable number in [0, 1) from a group id: the split never depends on order."""
    return int(hashlib.sha256(group.encode()).hexdigest()[:12], 16) / 16**12


def held_out_groups(sections: Sequence[Section], taxonomy: Taxonomy) -> set[str]:
    """The held-out groups: in each stratum, the share with the lowest hashes.

    Strata are the primary topic (single sections) and `document` (multi-section
    documents), per language, so every label is held out in proportion. Adding a section moves
    at most one group across the line, so the split stays fixed as data grows.
    """
    doc_ids = {s.doc for s in sections if s.doc}
    by_stratum: dict[str, set[str]] = {}
    for section in sections:
        key = stratum(section, taxonomy, section.group in doc_ids)
        by_stratum.setdefault(key, set()).add(section.group)
    held_out: set[str] = set()
    for groups in by_stratum.values():
        ranked = sorted(groups, key=group_hash)
        held_out.update(ranked[: round(len(ranked) * HELD_OUT_SHARE)])
    return held_out


def split(corpus: Corpus) -> tuple[list[Section], list[Section]]:
    """(train, held_out): whole documents fall on one side."""
    held = held_out_groups(corpus.sections, corpus.taxonomy)
    train = [s for s in corpus.sections if s.group not in held]
    test = [s for s in corpus.sections if s.group in held]
    return train, test


def merge(base: Corpus, extra: Corpus) -> tuple[Corpus, list[str]]:
    """Our corpus plus an analyst's: their exact duplicates of ours are dropped and
    reported, near duplicates are reported, colliding ids are errors."""
    ids = {s.id: s for s in base.sections}
    collisions = [
        f"{s.source}: id: {s.id!r} is already used in the base data ({ids[s.id].source})"
        for s in extra.sections
        if s.id in ids
    ]
    if collisions:
        raise DataError(collisions)
    known = {normalized(s.text): s for s in base.sections}
    report, kept = [], []
    for section in extra.sections:
        twin = known.get(normalized(section.text))
        if twin is not None:
            report.append(f"{section.source}: duplicate of base section {twin.id}; dropped")
        else:
            kept.append(section)
    texts = [s.text for s in base.sections] + [s.text for s in kept]
    for a, b, cosine in near_duplicates(texts):
        if a < len(base.sections) <= b:
            theirs, ours = kept[b - len(base.sections)], base.sections[a]
            report.append(
                f"{theirs.source}: near duplicate of base section {ours.id} "
                f"(TF-IDF cosine {cosine:.2f}); kept"
            )
    merged = Corpus(
        base.taxonomy,
        [*base.sections, *kept],
        [*base.files, *extra.files],
        [*base.quotes, *extra.quotes],
        [*base.quote_files, *extra.quote_files],
    )
    return merged, report


def summary(corpus: Corpus) -> str:
    """Counts a writer needs while adding data: labels, multi-topic share, pairs."""
    sections, taxonomy = corpus.sections, corpus.taxonomy
    primaries = Counter(s.primary_topic(taxonomy.none_topic) for s in sections)
    pairs = Counter((actor, stance) for s in sections for actor, stance in s.stances.items())
    stance_totals = Counter(stance for _, stance in pairs.elements())
    multi = sum(len(s.topics) >= 2 for s in sections)
    total_pairs = sum(pairs.values())
    lines = [
        f"sections: {len(sections)}; documents: {len({s.doc for s in sections if s.doc})}",
        "primary topic: " + ", ".join(f"{k} {v}" for k, v in sorted(primaries.items())),
        f"two or more topics: {multi} ({multi / max(len(sections), 1):.0%})",
        f"actor-stance pairs: {total_pairs}; "
        + ", ".join(
            f"{stance} {n} ({n / max(total_pairs, 1):.0%})" for stance, n in stance_totals.items()
        ),
    ]
    for actor in taxonomy.actor_names:
        counts = {stance: pairs[(actor, stance)] for stance in taxonomy.stances}
        lines.append(f"  {actor}: {sum(counts.values())} " + str(counts))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m training.dataset check|stats PATH`: validate, or validate and count."""
    parser = argparse.ArgumentParser(prog="python -m training.dataset")
    parser.add_argument("command", choices=["check", "stats"])
    parser.add_argument("path", type=Path, help="a corpus directory, or one JSONL or CSV file")
    parser.add_argument(
        "--config", type=Path, help="taxonomy file (default: taxonomy.toml next to the data)"
    )
    args = parser.parse_args(argv)
    try:
        corpus = load_corpus(args.path, args.config)
    except DataError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    train, test = split(corpus)
    quotes = f"; {len(corpus.quotes)} labeled quotes" if corpus.quotes else ""
    print(
        f"ok: {len(corpus.sections)} sections in {len(corpus.files)} file(s); "
        f"{len(train)} train, {len(test)} held out{quotes}"
    )
    if args.command == "stats":
        print(summary(corpus))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
