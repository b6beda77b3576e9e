"""Actor alias matching from the default alias lists."""

from __future__ import annotations

import pytest

from tests.conftest import DATA
from topicstance.actors import ActorAliases, ActorMatcher
from training.dataset import load_taxonomy


@pytest.fixture(scope="module")
def matcher() -> ActorMatcher:
    return load_taxonomy(DATA / "taxonomy.toml").matcher()


def found(matcher: ActorMatcher, text: str) -> list[tuple[str, str]]:
    return [(m.actor, m.text) for m in matcher.find(text)]


def test_spellings_and_possessives(matcher: ActorMatcher) -> None:
    text = "Zelenskyy’s aide and Zelensky's office met in Kiev, then Kyiv."
    assert found(matcher, text) == [
        ("ukraine", "Zelenskyy"),
        ("ukraine", "Zelensky"),
        ("ukraine", "Kiev"),
        ("ukraine", "Kyiv"),
    ]


def test_acronyms_are_case_sensitive(matcher: ActorMatcher) -> None:
    assert found(matcher, "Let us talk about US-made jets and the U.S. position.") == [
        ("united_states", "US"),
        ("united_states", "U.S."),
    ]


def test_names_need_their_capital_but_not_the_rest(matcher: ActorMatcher) -> None:
    assert found(matcher, "He played a trump card.") == []
    assert found(matcher, "TRUMP MEETS PUTIN") == [("united_states", "TRUMP"), ("russia", "PUTIN")]


def test_excluded_phrases_hide_aliases(matcher: ActorMatcher) -> None:
    assert found(matcher, "Exports to Latin America and a Washington Post report.") == []
    assert found(matcher, "America and Washington agreed.") == [
        ("united_states", "America"),
        ("united_states", "Washington"),
    ]


def test_word_boundaries(matcher: ActorMatcher) -> None:
    assert found(matcher, "Russianness, USAID, Kyivstar") == []
    assert found(matcher, "pro-Russian and Russia-Ukraine talks") == [
        ("russia", "Russian"),
        ("russia", "Russia"),
        ("ukraine", "Ukraine"),
    ]


def test_offsets_and_multiword_aliases(matcher: ActorMatcher) -> None:
    text = "The White\nHouse said so."
    (mention,) = matcher.find(text)
    assert (mention.actor, text[mention.start : mention.end]) == ("united_states", "White\nHouse")


def test_longest_alias_wins_and_order_of_actors() -> None:
    custom = ActorMatcher({"a": ActorAliases(("North",)), "b": ActorAliases(("North Star",))})
    assert [m.actor for m in custom.find("The North Star and the North.")] == ["b", "a"]
    assert custom.actors_in("The North and the North Star.") == ["a", "b"]


def test_ukrainian_inflected_forms_and_abbreviations(matcher: ActorMatcher) -> None:
    text = (
        "Україною та України; у Києві говорили із Зеленським. Війська рф і ЗСУ, "
        "Сполученими Штатами, Білого дому, Трампа. Ворог і окупанти атакували."
    )
    assert found(matcher, text) == [
        ("ukraine", "Україною"),
        ("ukraine", "України"),
        ("ukraine", "Києві"),
        ("ukraine", "Зеленським"),
        ("russia", "рф"),
        ("ukraine", "ЗСУ"),
        ("united_states", "Сполученими Штатами"),
        ("united_states", "Білого дому"),
        ("united_states", "Трампа"),
    ]


def test_russian_forms_and_what_is_not_a_mention(matcher: ActorMatcher) -> None:
    text = (
        "Россией и в Москве; Путина поддержали в Кремле. ВСУ и Киевом, "
        "Соединённых Штатов, Латинской Америки. Противник и наши войска. Верховна Рада."
    )
    assert found(matcher, text) == [
        ("russia", "Россией"),
        ("russia", "Москве"),
        ("russia", "Путина"),
        ("russia", "Кремле"),
        ("ukraine", "ВСУ"),
        ("ukraine", "Киевом"),
        ("united_states", "Соединённых Штатов"),
    ]


def test_a_stem_takes_only_a_short_ending() -> None:
    stems = ActorMatcher({"a": ActorAliases(("Трамп*",))})
    assert [m.text for m in stems.find("Трампом, Трамп і Трамплінами")] == ["Трампом", "Трамп"]


def test_a_name_after_another_given_name_is_someone_elses(matcher: ActorMatcher) -> None:
    text = (
        "Баскетболист Рики Рубио набрал 20 очков, а госсекретарь Марко Рубио промолчал. "
        "Позже Рубио позвонил в Киев. Глава МИД России Лавров и актриса Анна Лаврова."
    )
    assert found(matcher, text) == [
        ("united_states", "Рубио"),
        ("united_states", "Рубио"),
        ("ukraine", "Киев"),
        ("russia", "России"),
        ("russia", "Лавров"),
    ]


def test_a_capitalised_word_that_may_open_a_sentence_is_no_given_name(
    matcher: ActorMatcher,
) -> None:
    text = "💡 Поки Трамп мовчить. — Тем временем Рубио улетел; (Марко Рубио)"
    assert [m.text for m in matcher.find(text)] == ["Трамп", "Рубио", "Рубио"]


def test_a_name_alone_in_guillemets_names_a_thing(matcher: ActorMatcher) -> None:
    text = "Ледокол «Ермак» вышел из порта; «Ермак заявил о переговорах», пишет издание."
    assert found(matcher, text) == [("ukraine", "Ермак")]


def test_the_name_guard_needs_its_data() -> None:
    plain = ActorMatcher({"a": ActorAliases(("Рубио",))})
    guarded = ActorMatcher(
        {"a": ActorAliases(("Рубио",), names=("Рубио",), name_openers=("Марко",))}
    )
    text = "Игрок Рики Рубио и политик Марко Рубио."
    assert [m.text for m in plain.find(text)] == ["Рубио", "Рубио"]
    assert [m.start for m in guarded.find(text)] == [text.rindex("Рубио")]


def test_a_place_or_another_script_before_a_name_is_no_given_name(matcher: ActorMatcher) -> None:
    sentences = {
        "В Давосе Зеленский призвал к переговорам.": ["Зеленский"],
        "В Эр-Рияде Рубио и Лавров говорили пять часов.": ["Рубио", "Лавров"],
        "В интервью Fox News Трамп сказал это.": ["Трамп"],
        "Після зустрічі з Ердоганом Зеленський заявив.": ["Зеленський"],
    }
    for text, names in sentences.items():
        assert [m.text for m in matcher.find(text)] == names, text
