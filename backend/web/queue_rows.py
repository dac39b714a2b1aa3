"""The queue page's rows, written in Python: what the loop of ``web/_queue_items.html`` wrote.

Fifty rows through Jinja were most of the queue page's CPU: per row eight ``_()`` calls through
``Context.call``, a ``url_for``, Babel's two formats and some thirty values escaped one by one.
Here each row is one format of a template string with the same words (``_`` below: the
request's catalogue, as the templates' ``_()``; pybabel extracts them from this file), escaped
as Jinja's autoescape escapes them (``markupsafe.escape``; a ``_()`` with variables is
``Markup(translation) % variables``, as Jinja's new-style gettext). A test renders the template's
loop as it was (kept in the test) and these rows for alerts in every state, in both languages,
and compares them byte for byte (tests/web/test_queue_rows.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from flask import url_for
from markupsafe import Markup, escape

from backend.web.i18n import (
    _babel_locale,
    _translations,
    ago_in,
    format_datetime_in,
    label,
    site_zone,
    years_old,
)

_ROW = (
    '\n    <tr class="row sev-{severity}{overdue_class}{new_class}">'
    '\n      <td class="pick">{pick}</td>'
    '\n      <td data-label="{l_severity}">'
    '\n        <span class="badge sev-{severity}">{severity_label}</span>'
    "\n        {overdue_badge}"
    "\n        {back_badge}"
    "\n        {new_badge}"
    "\n      </td>"
    '\n      <td data-label="{l_alert}">'
    '\n        <a id="alert-{id}" class="alert-link" href="{href}">{kind_label}</a>'
    '\n        <p class="summary">{summary}</p>'
    "\n      </td>"
    '\n      <td data-label="{l_patient}">'
    "\n        {given_name} {family_name}"
    '\n        <span class="muted nowrap">{years} · {mrn}</span>'
    "\n      </td>"
    '\n      <td data-label="{l_opened}">'
    "\n        {ago}"
    '\n        <span class="muted nowrap">{when}</span>'
    "\n      </td>"
    '\n      <td data-label="{l_status}">'
    "\n        {status_label}"
    "\n        {acknowledged_by}"
    "\n      </td>"
    '\n      <td data-label="{l_owner}" class="owner">{owner}</td>'
    "\n    </tr>"
    "\n  "
)
_SENTINEL = uuid.UUID(int=0)  # an alert's link is the sentinel's, with the alert's id in its place
_PICK = (
    '<input type="checkbox" form="bulk" name="alert_ids" value="{id}" id="pick-{id}"{checked}>'
    '<label for="pick-{id}" class="visually-hidden">{tick}</label>'
)


def _escape(value: Any) -> str:
    """``markupsafe.escape`` of a value, as text (the same five characters, the same entities),
    without a ``Markup`` made for each of a page's few hundred values."""
    text = value if type(value) is str else str(value)
    if "&" in text or "<" in text or ">" in text or "'" in text or '"' in text:
        return str(escape(text))
    return text


def queue_rows(items: Iterable[Mapping[str, Any]], now: datetime, form: Any = None) -> Markup:
    """The rows of the queue's table for ``items`` (``presenters.present``'s alerts, or any
    mapping with the same keys), ``form`` the submitted form when the page comes back with an
    error (its ticked alerts stay ticked)."""
    _ = _translations().ugettext  # the templates' ``_()``: the request's catalogue
    locale, zone = _babel_locale(), site_zone()
    # Jinja's new-style gettext under autoescape is ``Markup(translation) % variables``: always
    # a format (so "%%" is "%"), the variables escaped. Every format here is ``%(name)s``.
    l_severity, l_alert, l_patient = _("Severity") % {}, _("Alert") % {}, _("Patient") % {}
    l_opened, l_status, l_owner = _("Opened") % {}, _("Status") % {}, _("Owner") % {}
    overdue_badge = '<span class="badge overdue">%s</span>' % (_("Overdue") % {})
    back_badge = '<span class="badge back">%s</span>' % (_("Back from snooze") % {})
    new_badge = '<span class="badge new">%s</span>' % (_("New") % {})
    shared = '<span class="muted">%s</span>' % (_("Shared queue") % {})
    tick, years, by = _("Tick %(kind)s, %(name)s"), _("%(years)s years"), _("by %(name)s")
    ticked = form.getlist("alert_ids") if form else ()
    alert_url = url_for("web.alert", alert_id=_SENTINEL).split(str(_SENTINEL))
    labels: dict[tuple[str, Any], str] = {}  # ``label``, once per value

    def label_of(value: Any, vocabulary: str) -> str:
        key = (vocabulary, value)
        text = labels.get(key)
        if text is None:
            text = labels[key] = label(value, vocabulary)
        return text

    ages: dict[Any, str] = {}
    out = []
    for a in items:
        alert_id = a["id"]
        id_text = _escape(alert_id)
        severity = _escape(a["severity"])
        kind_label = label_of(a["kind"], "alert_kind")
        patient = a["patient"]
        given_name, family_name = patient.given_name, patient.family_name
        overdue, new = a["overdue"], a["new"]
        pick = ""
        if a["status"] == "open":
            pick = _PICK.format(
                id=id_text,
                checked=" checked" if form and str(alert_id) in ticked else "",
                tick=tick
                % {"kind": _escape(kind_label), "name": _escape(f"{given_name} {family_name}")},
            )
        acknowledged_by = a["acknowledged_by"]
        owner = a["owner"]
        born = patient.birth_date
        age = ages.get(born)
        if age is None:
            age = ages[born] = years % {"years": _escape(years_old(born))}
        created_at = a["created_at"]
        # ``time_element``
        when = (
            f'<time datetime="{_escape(created_at.isoformat())}">'
            f"{_escape(format_datetime_in(created_at, zone, locale))}</time>"
        )
        out.append(
            _ROW.format(
                severity=severity,
                overdue_class=" is-overdue" if overdue else "",
                new_class=" is-new" if new else "",
                pick=pick,
                l_severity=l_severity,
                severity_label=_escape(label_of(a["severity"], "severity")),
                overdue_badge=overdue_badge if overdue else "",
                back_badge=back_badge if a["back_from_snooze"] else "",
                new_badge=new_badge if new else "",
                l_alert=l_alert,
                id=id_text,
                href=_escape(f"{alert_url[0]}{alert_id}{alert_url[1]}"),
                kind_label=_escape(kind_label),
                summary=_escape(a["summary"]),
                l_patient=l_patient,
                given_name=_escape(given_name),
                family_name=_escape(family_name),
                years=age,
                mrn=_escape(patient.mrn),
                l_opened=l_opened,
                ago=_escape(ago_in(created_at, now, _, locale)),
                when=when,
                l_status=l_status,
                status_label=_escape(label_of(a["status"], "alert_status")),
                acknowledged_by='<span class="muted nowrap">%s</span>'
                % (by % {"name": _escape(acknowledged_by.full_name or acknowledged_by.email)})
                if acknowledged_by
                else "",
                l_owner=l_owner,
                owner=_escape(owner.full_name or owner.email) if owner else shared,
            )
        )
    return Markup("".join(out))  # noqa: S704 (each value escaped above)
