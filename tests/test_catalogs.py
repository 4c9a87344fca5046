"""Every user-facing string is in every catalog, translated, with the same placeholders."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from voix.i18n import LANGUAGES, LOCALES_DIR, catalog
from voix.settings import PROJECT_ROOT

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
TEMPLATES = ("**/templates/**.html", "**/templates/**.svg")
METHOD_MAP = [*((pattern, "jinja2") for pattern in TEMPLATES), ("**.py", "python")]
SKIPPED_DIRS = {".venv", "tests", "bench", "var", "piccolo_migrations"}


def source_messages() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for _, _, message, _, _ in extract_from_dir(
        PROJECT_ROOT,
        METHOD_MAP,
        # As babel.cfg says: the templates' own tags known, and a template the extractor cannot
        # read an error (silently, its strings were left out of every catalog).
        options_map={
            pattern: {
                "extensions": "jinja2.ext.i18n,voix.fragments.FragmentCache",
                "silent": "false",
            }
            for pattern in TEMPLATES
        },
        keywords={**DEFAULT_KEYWORDS, "N_": None},
        directory_filter=lambda path: not (set(path.split("/")) & SKIPPED_DIRS),
    ):
        found.add(message if isinstance(message, str) else tuple(message[:2]))
    return found


@pytest.fixture(scope="module")
def messages() -> set[str | tuple[str, str]]:
    extracted = source_messages()
    assert len(extracted) > 100, "extraction found too little: is the method map right?"
    return extracted


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_is_complete_and_consistent(lang: str, messages: set) -> None:
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        parsed = read_po(po, locale=lang)
    entries = {
        (message.id[0] if isinstance(message.id, tuple) else message.id): message
        for message in parsed
        if message.id
    }
    missing = [m for m in messages if (m[0] if isinstance(m, tuple) else m) not in entries]
    assert not missing, f"not in the {lang} catalog (run make messages): {missing}"
    for msgid, message in entries.items():
        assert not message.fuzzy, f"{lang}: fuzzy {msgid!r}"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{lang}: untranslated {msgid!r}"
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = set().union(*(PLACEHOLDER.findall(source) for source in sources))
        for text in strings:
            found = set(PLACEHOLDER.findall(text))
            # A plural form may leave the number out ("la première proposition"), nothing else.
            allowed = [expected, expected - {"%(num)d"}] if len(sources) > 1 else [expected]
            assert found in allowed, (lang, msgid, text)


def test_arabic_plurals_follow_the_arabic_rules() -> None:
    arabic = catalog("ar")
    forms = {
        n: arabic.ngettext("%(num)d proposal", "%(num)d proposals", n) for n in (1, 2, 5, 15, 100)
    }
    assert len({forms[1], forms[2], forms[5], forms[15]}) == 4
    assert forms[100] == forms[1]  # 100 takes the "other" form, like 1 in this catalog's words
