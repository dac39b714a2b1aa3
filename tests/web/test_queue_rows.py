"""The queue page's rows written in Python (``backend.web.queue_rows``) against the Jinja loop
that wrote them before, byte for byte: alerts in every state, both languages, a form coming
back with ticked alerts, and text that must be escaped."""

# ruff: noqa: E501 (the template's lines, verbatim)
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask_babel import force_locale
from werkzeug.datastructures import MultiDict

from backend.alerts.presenters import present_page, present_rows
from backend.web.queue_rows import queue_rows
from tests.test_dumping import queue_of_every_kind, the_three_queues

# The loop of web/_queue_items.html before the rows were written in Python, with the words it
# read from the page (the two ``set`` lines before it), verbatim.
TEMPLATE_LOOP = """\
{%- set l_severity, l_alert, l_patient, l_opened, l_status, l_owner = _('Severity'), _('Alert'), _('Patient'), _('Opened'), _('Status'), _('Owner') %}
{%- set l_overdue, l_back, l_new, l_shared = _("Overdue"), _("Back from snooze"), _("New"), _("Shared queue") %}
{%- for a in items %}
    <tr class="row sev-{{ a.severity }}{% if a.overdue %} is-overdue{% endif %}{% if a.new %} is-new{% endif %}">
      <td class="pick">{% if a.status == 'open' %}<input type="checkbox" form="bulk" name="alert_ids" value="{{ a.id }}" id="pick-{{ a.id }}"{% if form and (a.id|string) in form.getlist('alert_ids') %} checked{% endif %}><label for="pick-{{ a.id }}" class="visually-hidden">{{ _("Tick %(kind)s, %(name)s", kind=a.kind|label('alert_kind'), name=a.patient.given_name ~ ' ' ~ a.patient.family_name) }}</label>{% endif %}</td>
      <td data-label="{{ l_severity }}">
        <span class="badge sev-{{ a.severity }}">{{ a.severity|label('severity') }}</span>
        {% if a.overdue %}<span class="badge overdue">{{ l_overdue }}</span>{% endif %}
        {% if a.back_from_snooze %}<span class="badge back">{{ l_back }}</span>{% endif %}
        {% if a.new %}<span class="badge new">{{ l_new }}</span>{% endif %}
      </td>
      <td data-label="{{ l_alert }}">
        <a id="alert-{{ a.id }}" class="alert-link" href="{{ url_for('web.alert', alert_id=a.id) }}">{{ a.kind|label('alert_kind') }}</a>
        <p class="summary">{{ a.summary }}</p>
      </td>
      <td data-label="{{ l_patient }}">
        {{ a.patient.given_name }} {{ a.patient.family_name }}
        <span class="muted nowrap">{{ _("%(years)s years", years=a.patient.birth_date|years_old) }} · {{ a.patient.mrn }}</span>
      </td>
      <td data-label="{{ l_opened }}">
        {{ ago(a.created_at, now) }}
        <span class="muted nowrap">{{ a.created_at|when }}</span>
      </td>
      <td data-label="{{ l_status }}">
        {{ a.status|label('alert_status') }}
        {% if a.acknowledged_by %}<span class="muted nowrap">{{ _("by %(name)s", name=a.acknowledged_by.full_name or a.acknowledged_by.email) }}</span>{% endif %}
      </td>
      <td data-label="{{ l_owner }}" class="owner">{% if a.owner %}{{ a.owner.full_name or a.owner.email }}{% else %}<span class="muted">{{ l_shared }}</span>{% endif %}</td>
    </tr>
  {% endfor %}"""


def _escaping_variants(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the page's alerts with text to escape in every field a row shows, staff known
    by their e-mail only, an unknown kind, and a summary that looks like markup."""
    odd = SimpleNamespace(full_name="", email='o"brien&<co>@lyon.example')
    named = SimpleNamespace(full_name="Zoé <b>L'Hôpital</b> & co", email="z@lyon.example")
    out = []
    for n, item in enumerate(items):
        patient = item["patient"]
        out.append(
            {
                **item,
                "kind": "<unknown & kind>" if n == 0 else item["kind"],
                "summary": f"<script>alert('{n}')</script> & \"quotes\" 100 %",
                "patient": SimpleNamespace(
                    given_name=f"Jean-<i>{n}</i>",
                    family_name='d\'Arc & "Fils"',
                    birth_date=patient.birth_date,
                    mrn=f"<MRN>&{n}",
                ),
                "acknowledged_by": odd if n % 2 else named,
                "owner": named if n % 2 else odd,
            }
        )
    return out


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_the_python_rows_are_the_template_loop_s_byte_for_byte(app, nurse_ada, clock, locale):
    raised = queue_of_every_kind(nurse_ada, clock)
    now = clock.now()
    loop = app.jinja_env.from_string(TEMPLATE_LOOP)
    compared, states, rendered = 0, set(), []
    with app.test_request_context("/"), force_locale(locale):
        for page, _cursor in the_three_queues(nurse_ada, now):
            items = present_page(page, now, locale)
            ticked = MultiDict([("alert_ids", str(items[0]["id"])), ("alert_ids", "other")])
            for shown, form in [
                (items, {}),
                (items, ticked),
                (_escaping_variants(items), ticked),
                ([], {}),
            ]:
                expected = loop.render(items=shown, now=now, form=form)
                assert str(queue_rows(shown, now, form)) == expected
                rendered.append(expected)
                compared += len(shown)
            states |= {
                (a["status"], a["overdue"], a["new"], a["back_from_snooze"], a["owner"] is None)
                for a in items
            }
    assert compared == 3 * len(raised)
    # Every state a row shows differently was among them (and the escaping copies of each).
    assert {s[0] for s in states} == {"open", "acknowledged", "resolved"}
    for flag in range(1, 5):  # overdue, new, back from snooze, in the shared queue: each way
        assert {state[flag] for state in states} == {True, False}
    # In the page's language (the catalogue's words, not the English ones).
    shared = {"en": 'data-label="Owner"', "fr": 'data-label="Prise en charge par"'}[locale]
    assert shared in rendered[0]


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_the_queue_read_as_columns_shows_the_rows_its_entities_show(app, nurse_ada, clock, locale):
    """``present_rows`` (the queue page's alerts, read as columns) against ``present_page`` of
    the same alerts read as entities: the same keys and values (the patient and the staff
    named compared by what a page shows of them), and the same rows, byte for byte."""
    raised = queue_of_every_kind(nurse_ada, clock)
    now = clock.now()
    shown = 0
    with app.test_request_context("/"), force_locale(locale):
        for (rows, _), (page, _) in zip(
            the_three_queues(nurse_ada, now, columns=True, locale=locale),
            the_three_queues(nurse_ada, now),
            strict=True,
        ):
            fast, slow = present_rows(rows, now), present_page(page, now, locale)
            assert [list(a) for a in fast] == [list(a) for a in slow]
            for a, b in zip(fast, slow, strict=True):
                for key in a:
                    if key == "patient":
                        assert [getattr(a[key], f) for f in _PATIENT] == [
                            getattr(b[key], f) for f in _PATIENT
                        ]
                    elif key in _STAFF:
                        assert a[key] is b[key]  # the same User, or both None
                    else:
                        assert a[key] == b[key], key
            assert str(queue_rows(fast, now, {})) == str(queue_rows(slow, now, {}))
            shown += len(fast)
    assert shown == len(raised)


_PATIENT = ("id", "mrn", "given_name", "family_name", "birth_date")
_STAFF = ("acknowledged_by", "resolved_by", "owner", "seen_by")
