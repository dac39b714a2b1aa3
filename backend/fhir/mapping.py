"""Our rows as FHIR R4 resources (plain dicts, JSON-ready): the one place that decides the
mapping (docs/fhir.md has the table).

Two views (``View``): ``care`` (identified: ids are ours, names, MRN, dates) and ``research``
(research.md's pseudonymised export as FHIR): every id is the research pseudonym of our id
(HMAC-SHA256 under ``RESEARCH_PSEUDONYM_KEY``, 16 hex; a patient's id is exactly the research
export's pseudonym), no name, MRN, birth date, phone, e-mail, no calendar date (days since
discharge in an extension instead), no free text (comments, notes, summaries), staff by role
only, and ``meta.security`` PSEUDED.

Mapping functions never query: the caller loads what they need (``search`` and ``bulk``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from backend.fhir import codes

Resource = dict[str, Any]
FREE_TEXT_TYPES = {"text", "free_text", "string"}
# Task priority from our severity (FHIR request-priority: routine | urgent | asap | stat).
PRIORITY = {"urgent": "stat", "high": "urgent", "routine": "routine"}
TASK_STATUS = {"open": "requested", "acknowledged": "in-progress", "resolved": "completed"}
PSEUDED = {
    "system": codes.SECURITY_LABEL,
    "code": "PSEUDED",
    "display": "pseudonymized",
}


@dataclass
class View:
    """Who reads: ``care`` (identified) or ``research`` (pseudonymised under ``key``)."""

    access: str
    site_codes: Mapping[uuid.UUID, str] = field(default_factory=dict)
    key: str | None = None

    @property
    def research(self) -> bool:
        return self.access == "research"

    def rid(self, our_id: uuid.UUID | str) -> str:
        """The resource id of one of our rows in this view."""
        if not self.research:
            return str(our_id)
        from backend.research.export import pseudonym

        assert self.key is not None
        return pseudonym(self.key, our_id)  # type: ignore[arg-type]

    def ref(self, resource_type: str, our_id: uuid.UUID | str) -> dict[str, str]:
        return {"reference": f"{resource_type}/{self.rid(our_id)}"}


def instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _meta(view: View, last_updated: datetime | None) -> dict[str, Any]:
    if view.research:
        return {"security": [dict(PSEUDED)]}
    return {"lastUpdated": instant(last_updated)} if last_updated else {}


def local_day(value: datetime, discharged_on: date, zone: str) -> int:
    """Days since discharge of an instant, by the patient's local date."""
    return (value.astimezone(ZoneInfo(zone)).date() - discharged_on).days


def _day_extension(day: int) -> dict[str, Any]:
    return {"url": codes.extension_url("follow-up-day"), "valueInteger": day}


def _translated(texts: Mapping[str, str], primary: str = "fr") -> tuple[str, dict[str, Any]]:
    """The primary-language text and its ``_text`` element carrying the other languages."""
    main = texts.get(primary) or next(iter(texts.values()), "")
    others = [
        {
            "url": codes.TRANSLATION,
            "extension": [
                {"url": "lang", "valueCode": lang},
                {"url": "content", "valueString": text},
            ],
        }
        for lang, text in sorted(texts.items())
        if lang != primary and text
    ]
    return main, ({"extension": others} if others else {})


# --- Patient -------------------------------------------------------------------------------------


def patient(p: Any, view: View, *, age: int | None = None) -> Resource:
    """care: MRN (one identifier system per site), name, birth date, gender, telecom, language.
    research: the pseudonym only (as identifier too), gender, age at the procedure."""
    status_ext = {
        "url": codes.extension_url("follow-up-status"),
        "valueCoding": codes.coding("patient-status", p.status),
    }
    res: Resource = {
        "resourceType": "Patient",
        "id": view.rid(p.id),
        "meta": _meta(view, p.updated_at),
        "extension": [status_ext],
        "gender": p.sex or "unknown",
    }
    if view.research:
        res["identifier"] = [
            {"system": codes.extension_url("research-pseudonym"), "value": view.rid(p.id)}
        ]
        if age is not None:
            res["extension"].append(
                {"url": codes.extension_url("age-at-procedure"), "valueInteger": age}
            )
        return res
    site_code = view.site_codes.get(p.site_id, "site")
    res["identifier"] = [
        {
            "use": "usual",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "MR",
                        "display": "Medical record number",
                    }
                ]
            },
            "system": f"{codes.base()}/sid/mrn/{site_code}",
            "value": p.mrn,
        }
    ]
    res["active"] = p.status not in ("deceased", "withdrawn")
    res["name"] = [{"use": "official", "family": p.family_name, "given": [p.given_name]}]
    res["birthDate"] = p.birth_date.isoformat()
    telecom = []
    if p.phone:
        telecom.append({"system": "phone", "value": p.phone, "use": "mobile"})
    if p.email:
        telecom.append({"system": "email", "value": p.email})
    if telecom:
        res["telecom"] = telecom
    if p.status == "deceased":
        res["deceasedBoolean"] = True
    res["communication"] = [
        {
            "language": {"coding": [{"system": codes.BCP47, "code": p.locale}]},
            "preferred": True,
        }
    ]
    res["managingOrganization"] = {
        "identifier": {"system": codes.system("site"), "value": site_code},
        "display": site_code,
    }
    return res


# --- Procedure -----------------------------------------------------------------------------------


def procedure(proc: Any, view: View) -> Resource:
    """code from our kinds, bodySite with laterality, performed date (care) or day (research),
    the screws as focalDevice, the etiology as reasonCode; never a note."""
    site: dict[str, Any] = codes.concept("body-site", proc.location)
    if proc.side:
        site["extension"] = [
            {
                "url": codes.extension_url("laterality"),
                "valueCoding": codes.coding("laterality", proc.side),
            }
        ]
    if proc.vertebral_level and not view.research:
        site["text"] = f"{proc.location} {proc.vertebral_level}"
    res: Resource = {
        "resourceType": "Procedure",
        "id": view.rid(proc.id),
        "meta": _meta(view, proc.created_at),
        "status": "completed",
        "code": codes.concept(
            "procedure-kind", proc.kind, codes.PROCEDURE_KIND_DISPLAY.get(proc.kind)
        ),
        "subject": view.ref("Patient", proc.patient_id),
        "bodySite": [site],
        "reasonCode": [codes.concept("etiology", proc.etiology)],
    }
    if view.research:
        res["extension"] = [_day_extension((proc.performed_on - proc.discharged_on).days)]
    else:
        res["performedDateTime"] = proc.performed_on.isoformat()
    if proc.screw_count:
        label = "screw" if proc.screw_count == 1 else "screws"
        res["focalDevice"] = [
            {"manipulated": {"type": "Device", "display": f"{proc.screw_count} {label}"}}
        ]
    return res


# --- Questionnaire -------------------------------------------------------------------------------


def questionnaire_id(key: str, version: int) -> str:
    return f"{key}-{version}"


def canonical(key: str, version: int) -> str:
    return f"{codes.questionnaire_url(key)}|{version}"


def questionnaire(instrument: Any) -> Resource:
    """An instrument version: canonical url + version, linkId = our item key, answer options as
    codings of ``answer-<item>``, French text with the English as a translation extension."""
    definition = instrument.definition
    title, title_ext = _translated(definition.get("title", {}))
    items = [_questionnaire_item(item) for item in definition.get("items", [])]
    res: Resource = {
        "resourceType": "Questionnaire",
        "id": questionnaire_id(instrument.key, instrument.version),
        "meta": {"lastUpdated": instant(instrument.created_at)},
        "language": "fr",
        "url": codes.questionnaire_url(instrument.key),
        "version": str(instrument.version),
        "name": instrument.key.capitalize(),
        "title": title,
        "status": "active",
        "subjectType": ["Patient"],
        "item": items,
    }
    if title_ext:
        res["_title"] = title_ext
    if definition.get("licence"):
        res["copyright"] = definition["licence"]
    return res


def _questionnaire_item(item: Mapping[str, Any]) -> Resource:
    text, text_ext = _translated(item.get("text", {}))
    kind = item["type"]
    code = [codes.coding("item", item["id"], item["text"].get("en"))]
    if item["id"] in codes.PAIN_ITEMS:
        code.append(
            {
                "system": codes.LOINC,
                "code": codes.PAIN_SEVERITY_0_10,
                "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
            }
        )
    out: Resource = {
        "linkId": item["id"],
        "code": code,
        "text": text,
        "type": {
            "integer": "integer",
            "boolean": "boolean",
            "choice": "choice",
            "multi_choice": "choice",
            "choice_integer": "choice",
        }.get(kind, "text"),
        "required": bool(item.get("required")),
    }
    if text_ext:
        out["_text"] = text_ext
    if kind == "multi_choice":
        out["repeats"] = True
    if kind == "integer":
        out["extension"] = [
            {"url": codes.MIN_VALUE, "valueInteger": item["minimum"]},
            {"url": codes.MAX_VALUE, "valueInteger": item["maximum"]},
        ]
    if kind == "text" and item.get("max_length"):
        out["maxLength"] = item["max_length"]
    if item.get("options"):
        options = []
        for option in item["options"]:
            label, label_ext = _translated(option.get("text", {}))
            value_coding: dict[str, Any] = {
                "system": codes.system(codes.answer_system_name(item["id"])),
                "code": str(option["value"]),
                "display": label,
            }
            if label_ext:
                value_coding["_display"] = label_ext
            options.append({"valueCoding": value_coding})
        out["answerOption"] = options
    return out


# --- QuestionnaireResponse -----------------------------------------------------------------------


def questionnaire_response(
    resp: Any,
    view: View,
    definition: Mapping[str, Any] | None,
    *,
    discharged_on: date | None = None,
    zone: str = "UTC",
    entered_by_name: str | None = None,
) -> Resource:
    """``questionnaire`` = url|version, ``authored`` = answered_at (care) or the day since
    discharge (research), ``source``/``author`` from who entered it, typed answers."""
    res: Resource = {
        "resourceType": "QuestionnaireResponse",
        "id": view.rid(resp.id),
        "meta": _meta(view, resp.received_at),
        "questionnaire": canonical(resp.instrument_key, resp.instrument_version),
        "status": "completed",
        "subject": view.ref("Patient", resp.patient_id),
        "extension": [
            {
                "url": codes.extension_url("entered-by"),
                "valueCoding": codes.coding("response-source", resp.source),
            }
        ],
    }
    if view.research:
        assert discharged_on is not None
        res["extension"].append(_day_extension(local_day(resp.answered_at, discharged_on, zone)))
    else:
        res["authored"] = instant(resp.answered_at)
    patient_ref = view.ref("Patient", resp.patient_id)
    if resp.source == "patient":
        res["source"] = patient_ref
        res["author"] = patient_ref
    elif resp.source == "caregiver":
        res["source"] = {"type": "RelatedPerson", "display": "caregiver"}
        res["author"] = {"type": "RelatedPerson", "display": "caregiver"}
    else:  # a nurse typed in what the patient said on the phone
        res["source"] = patient_ref
        name = None if view.research else entered_by_name
        res["author"] = {"type": "Practitioner", "display": name or "nurse"}
    res["item"] = _answers(resp.answers, definition, view)
    if not res["item"]:
        del res["item"]
    return res


def _answers(
    answers: Mapping[str, Any], definition: Mapping[str, Any] | None, view: View
) -> list[Resource]:
    items = (definition or {}).get("items", [])
    out = []
    for item in items:
        key, kind = item["id"], item["type"]
        if key not in answers or answers[key] is None:
            continue
        if view.research and (kind in FREE_TEXT_TYPES or key in {"comment", "comments"}):
            continue  # research.md: a comment is where identities leak
        value = answers[key]
        values = value if isinstance(value, list) else [value]
        answer: list[dict[str, Any]] = []
        for v in values:
            if kind == "integer":
                answer.append({"valueInteger": int(v)})
            elif kind == "boolean":
                answer.append({"valueBoolean": bool(v)})
            elif kind in {"choice", "multi_choice", "choice_integer"}:
                answer.append(
                    {
                        "valueCoding": {
                            "system": codes.system(codes.answer_system_name(key)),
                            "code": str(v),
                        }
                    }
                )
            else:
                if str(v).strip():
                    answer.append({"valueString": str(v)})
        if answer:
            out.append({"linkId": key, "answer": answer})
    return out


# --- alerts: ClinicalImpression (the rule's finding) + Task (the nurse's work) -------------------


def _response_ids(evidence: Mapping[str, Any]) -> list[str]:
    seen: list[str] = []
    for signal in evidence.get("signals", []) if isinstance(evidence, Mapping) else []:
        rid = (signal.get("response") or {}).get("id") if isinstance(signal, Mapping) else None
        if rid and rid not in seen:
            seen.append(str(rid))
        for extra in signal.get("response_ids", []) if isinstance(signal, Mapping) else []:
            if str(extra) not in seen:
                seen.append(str(extra))
    return seen


def _rule_extension(alert: Any) -> dict[str, Any]:
    return {
        "url": codes.extension_url("alert-rule"),
        "extension": [
            {"url": "key", "valueCode": alert.rule_key},
            {"url": "version", "valueInteger": alert.rule_version},
        ],
    }


def clinical_impression(
    alert: Any,
    view: View,
    *,
    kept_response_ids: set[str] | None = None,
    discharged_on: date | None = None,
    zone: str = "UTC",
) -> Resource:
    """The rule's finding: kind, summary (care), evidence referencing the responses, rule key
    and version (an extension, and ``protocol``)."""
    ids = _response_ids(alert.evidence)
    if kept_response_ids is not None:
        ids = [i for i in ids if i in kept_response_ids]
    res: Resource = {
        "resourceType": "ClinicalImpression",
        "id": view.rid(alert.id),
        "meta": _meta(view, alert.updated_at),
        "extension": [_rule_extension(alert)],
        "status": "completed",
        "code": codes.concept("alert-kind", alert.kind),
        "subject": view.ref("Patient", alert.patient_id),
        "protocol": [f"{codes.base()}/rules/{alert.rule_key}/v{alert.rule_version}"],
        "finding": [{"itemCodeableConcept": codes.concept("alert-kind", alert.kind)}],
    }
    if view.research:
        assert discharged_on is not None
        res["extension"].append(_day_extension(local_day(alert.created_at, discharged_on, zone)))
    else:
        res["effectiveDateTime"] = instant(alert.created_at)
        res["date"] = instant(alert.created_at)
        summary = alert.summary.get("fr") or alert.summary.get("en")
        if summary:
            res["summary"] = summary
    if ids:
        res["investigation"] = [
            {
                "code": {"text": "Questionnaire responses the rule read"},
                "item": [view.ref("QuestionnaireResponse", i) for i in ids],
            }
        ]
    return res


def task(
    alert: Any,
    view: View,
    *,
    staff_names: Mapping[uuid.UUID, str] | None = None,
    discharged_on: date | None = None,
    zone: str = "UTC",
) -> Resource:
    """The nurse's work on an alert: status from ours, priority from severity, owner, the
    outcome as ``businessStatus`` and ``output``, notes (care only)."""
    names = staff_names or {}
    res: Resource = {
        "resourceType": "Task",
        "id": view.rid(alert.id),
        "meta": _meta(view, alert.updated_at),
        "status": TASK_STATUS[alert.status],
        "intent": "order",
        "priority": PRIORITY[alert.severity],
        "code": codes.concept("alert-kind", alert.kind),
        "focus": view.ref("ClinicalImpression", alert.id),
        "for": view.ref("Patient", alert.patient_id),
        "extension": [
            {
                "url": codes.extension_url("alert-severity"),
                "valueCoding": codes.coding("alert-severity", alert.severity),
            }
        ],
    }
    owner_id = alert.resolved_by_id or alert.acknowledged_by_id
    if owner_id is not None:
        res["owner"] = {
            "type": "Practitioner",
            "display": "nurse" if view.research else names.get(owner_id, "nurse"),
        }
    if view.research:
        assert discharged_on is not None
        res["extension"].append(_day_extension(local_day(alert.created_at, discharged_on, zone)))
    else:
        res["authoredOn"] = instant(alert.created_at)
        res["lastModified"] = instant(alert.updated_at)
        period: dict[str, str] = {}
        if alert.acknowledged_at:
            period["start"] = instant(alert.acknowledged_at)
        if alert.resolved_at:
            period["end"] = instant(alert.resolved_at)
        if period:
            res["executionPeriod"] = period
        restriction = {"period": {"end": instant(alert.due_at)}}
        res["restriction"] = restriction
        notes = [
            {
                "authorString": names.get(note.author_id, "nurse"),
                "time": instant(note.created_at),
                "text": note.text,
            }
            for note in alert.notes
            if note.text and note.text.strip()
        ]
        if notes:
            res["note"] = notes
    if alert.outcome:
        outcome = codes.concept("alert-outcome", alert.outcome)
        res["businessStatus"] = outcome
        res["output"] = [
            {"type": codes.concept("task-output", "outcome"), "valueCodeableConcept": outcome}
        ]
    return res


# --- Consent -------------------------------------------------------------------------------------


def consents(patient_id: uuid.UUID, decisions: Sequence[Any], view: View) -> list[Resource]:
    """One Consent per ``given`` decision: active while it stands, its provision period ending
    at the withdrawal that followed it (then inactive). Withdrawals are not resources of their
    own: they end a consent."""
    out = []
    for purpose in ("care", "research"):
        rows = [d for d in decisions if d.purpose == purpose]
        for i, row in enumerate(rows):
            if row.decision != "given":
                continue
            withdrawal = next((d for d in rows[i + 1 :] if d.decision == "withdrawn"), None)
            period: dict[str, str] = {"start": row.decided_on.isoformat()}
            if withdrawal is not None:
                period["end"] = withdrawal.decided_on.isoformat()
            out.append(consent(row, purpose, period, withdrawal, view, patient_id))
    return out


def consent(
    row: Any,
    purpose: str,
    period: Mapping[str, str],
    withdrawal: Any,
    view: View,
    patient_id: uuid.UUID,
) -> Resource:
    last = withdrawal.recorded_at if withdrawal is not None else row.recorded_at
    res: Resource = {
        "resourceType": "Consent",
        "id": view.rid(row.id),
        "meta": _meta(view, last),
        "status": "inactive" if withdrawal is not None else "active",
        "scope": {
            "coding": [
                {
                    "system": codes.CONSENT_SCOPE,
                    "code": "research" if purpose == "research" else "treatment",
                    "display": "Research" if purpose == "research" else "Treatment",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": codes.LOINC,
                        "code": codes.CONSENT_CATEGORY_LOINC,
                        "display": "Patient Consent",
                    }
                ]
            },
            codes.concept("consent-purpose", purpose),
        ],
        "patient": view.ref("Patient", patient_id),
        "policy": [{"uri": f"{codes.base()}/consent-policy/{purpose}"}],
        "provision": {"type": "permit", "period": dict(period)},
    }
    if not view.research:
        res["dateTime"] = instant(row.recorded_at)
    return res


# --- ResearchStudy, ResearchSubject -------------------------------------------------------------


def research_study(study: Any, view: View) -> Resource:
    return {
        "resourceType": "ResearchStudy",
        "id": view.rid(study.id),
        "meta": _meta(view, study.created_at),
        "identifier": [{"system": f"{codes.base()}/sid/study", "value": study.key}],
        "title": study.title,
        "status": "active",
        "arm": [{"name": str(arm)} for arm in study.arms],
    }


def research_subject(allocation: Any, view: View, *, actual_arm: str | None) -> Resource:
    """A randomised patient: ``assignedArm`` the allocation (intention to treat),
    ``actualArm`` the study arm recorded on the procedure performed (per protocol)."""
    res: Resource = {
        "resourceType": "ResearchSubject",
        "id": view.rid(allocation.id),
        "meta": _meta(view, allocation.allocated_at),
        "status": "on-study",
        "study": view.ref("ResearchStudy", allocation.study_id),
        "individual": view.ref("Patient", allocation.patient_id),
        "assignedArm": allocation.arm,
    }
    if actual_arm:
        res["actualArm"] = actual_arm
    if not view.research and allocation.allocated_at:
        res["period"] = {"start": instant(allocation.allocated_at)}
    return res
