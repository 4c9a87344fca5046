"""Templates translate as Jinja's newstyle gettext does, through voix.web's own `_`,
`gettext` and `ngettext` (one call each instead of Jinja's three): the reader's language, the
variables escaped where the template escapes, `num` given to plurals, `{% trans %}` blocks."""

from __future__ import annotations

import pytest

from voix import i18n
from voix.web import environment


@pytest.fixture
def render():
    def rendered(source: str, language: str, **context: object) -> str:
        token = i18n.current_language.set(language)
        try:
            return environment().from_string(source).render(**context)
        finally:
            i18n.current_language.reset(token)

    return rendered


def test_the_readers_language(render) -> None:
    assert render('{{ _("Back to the vote") }}', "fr") == "Retour au vote"
    assert render('{{ _("Back to the vote") }}', "ar") == "العودة إلى التصويت"
    assert render('{{ gettext("Back to the vote") }}', "en") == "Back to the vote"


def test_variables_are_escaped_where_the_template_escapes(render) -> None:
    source = '{{ _("Sent on %(date)s, answer expected by %(due)s", date=d, due="1 mars") }}'
    html = render(source, "en", d="<b>2 mai</b>")
    assert html == "Sent on &lt;b&gt;2 mai&lt;/b&gt;, answer expected by 1 mars"
    # Marked safe, a variable is kept as it is (the |bdi filter's isolates).
    kept = render(
        '{{ _("Sent on %(date)s, answer expected by %(due)s", date=d|bdi, due="x") }}',
        "en",
        d="2 mai",
    )
    assert kept == "Sent on <bdi>2 mai</bdi>, answer expected by x"
    # Where the template does not escape, nothing is escaped.
    raw = render("{% autoescape false %}" + source + "{% endautoescape %}", "en", d="<b>2</b>")
    assert raw == "Sent on <b>2</b>, answer expected by 1 mars"


def test_plurals_get_their_number(render) -> None:
    source = '{{ ngettext("%(num)d day late", "%(num)d days late", n) }}'
    assert render(source, "en", n=1) == "1 day late"
    assert render(source, "en", n=3) == "3 days late"
    assert render(source, "fr", n=3) == "3 jours de retard"


def test_trans_blocks(render) -> None:
    source = (
        "{% trans count=n %}{{ count }} day late{% pluralize %}{{ count }} days late{% endtrans %}"
    )
    assert render(source, "en", n=2) == "2 days late"
    assert render("{% trans %}Back to the vote{% endtrans %}", "fr") == "Retour au vote"


def test_no_template_takes_globals_of_its_own() -> None:
    """Templates share the environment's globals as they are (voix.web._Environment): globals
    given for one template would reach every template, so they are refused."""
    env = environment()
    env.get_template("base.html")
    with pytest.raises(TypeError):
        env.get_template("base.html", globals={"leak": 1})
    assert "leak" not in env.globals
