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

from backend.web.i18n import _translations, ago, label, time_element, years_old

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


def queue_rows(items: Iterable[Mapping[str, Any]], now: datetime, form: Any = None) -> Markup:
    """The rows of the queue's table for ``items`` (``presenters.present``'s alerts, or any
    mapping with the same keys), ``form`` the submitted form when the page comes back with an
    error (its ticked alerts stay ticked)."""
    catalogue = _translations().ugettext

    def _(string: str, **variables: Any) -> Markup:
        # Jinja's new-style gettext under autoescape: always a format, the variables escaped.
        return Markup(catalogue(string)) % variables  # noqa: S704 (our catalogue, as Jinja)

    l_severity, l_alert, l_patient = _("Severity"), _("Alert"), _("Patient")
    l_opened, l_status, l_owner = _("Opened"), _("Status"), _("Owner")
    overdue_badge = Markup('<span class="badge overdue">%s</span>') % _("Overdue")
    back_badge = Markup('<span class="badge back">%s</span>') % _("Back from snooze")
    new_badge = Markup('<span class="badge new">%s</span>') % _("New")
    shared = Markup('<span class="muted">%s</span>') % _("Shared queue")
    ticked = form.getlist("alert_ids") if form else ()
    alert_url = url_for("web.alert", alert_id=_SENTINEL).split(str(_SENTINEL))
    out = []
    for a in items:
        alert_id = escape(a["id"])
        severity = escape(a["severity"])
        kind_label = label(a["kind"], "alert_kind")
        patient = a["patient"]
        given_name, family_name = patient.given_name, patient.family_name
        overdue, new = a["overdue"], a["new"]
        pick = ""
        if a["status"] == "open":
            pick = _PICK.format(
                id=alert_id,
                checked=" checked" if form and str(a["id"]) in ticked else "",
                tick=_(
                    "Tick %(kind)s, %(name)s", kind=kind_label, name=f"{given_name} {family_name}"
                ),
            )
        acknowledged_by = a["acknowledged_by"]
        owner = a["owner"]
        out.append(
            _ROW.format(
                severity=severity,
                overdue_class=" is-overdue" if overdue else "",
                new_class=" is-new" if new else "",
                pick=pick,
                l_severity=l_severity,
                severity_label=escape(label(a["severity"], "severity")),
                overdue_badge=overdue_badge if overdue else "",
                back_badge=back_badge if a["back_from_snooze"] else "",
                new_badge=new_badge if new else "",
                l_alert=l_alert,
                id=alert_id,
                href=escape(f"{alert_url[0]}{a['id']}{alert_url[1]}"),
                kind_label=escape(kind_label),
                summary=escape(a["summary"]),
                l_patient=l_patient,
                given_name=escape(given_name),
                family_name=escape(family_name),
                years=_("%(years)s years", years=years_old(patient.birth_date)),
                mrn=escape(patient.mrn),
                l_opened=l_opened,
                ago=escape(ago(a["created_at"], now)),
                when=time_element(a["created_at"]),
                l_status=l_status,
                status_label=escape(label(a["status"], "alert_status")),
                acknowledged_by=Markup('<span class="muted nowrap">%s</span>')
                % _("by %(name)s", name=acknowledged_by.full_name or acknowledged_by.email)
                if acknowledged_by
                else "",
                l_owner=l_owner,
                owner=escape(owner.full_name or owner.email) if owner else shared,
            )
        )
    return Markup("".join(out))  # noqa: S704 (each value escaped above)
