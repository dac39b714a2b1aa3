"""Our local CodeSystems, with canonical URLs under ``FHIR_CANONICAL_BASE``, and the external
codes we use (only those verified: LOINC 72514-3 for the 0-10 pain items; HL7 terminology for
consent scope and the PSEUDED security label). No SNOMED CT: none has been verified for our
procedure kinds, so our own CodeSystem carries them with their display.

The CodeSystems are built from the same value lists the models and the instruments use
(``backend.patients.models``, ``backend.alerts``, the instrument definitions), so a code we
emit and the CodeSystem that defines it cannot drift; tests check every emitted coding of our
systems against them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import current_app

LOINC = "http://loinc.org"
PAIN_SEVERITY_0_10 = "72514-3"  # Pain severity - 0-10 verbal numeric rating [Score] - Reported
PAIN_ITEMS = ("pain_rest", "pain_walking")
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_CATEGORY_LOINC = "59284-0"  # Patient Consent (R4's consent-category example value set)
SECURITY_LABEL = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
BCP47 = "urn:ietf:bcp:47"

PROCEDURE_KIND_DISPLAY = {
    "cementoplasty": "Percutaneous cementoplasty (cement alone)",
    "screw_fixation": "Percutaneous image-guided screw fixation (screws alone)",
    "screw_fixation_cementoplasty": "Percutaneous screw fixation with cementoplasty",
    "sclerotherapy": "Percutaneous sclerotherapy",
    "other_hardware": "Other percutaneous hardware",
}


def base() -> str:
    return str(current_app.config["FHIR_CANONICAL_BASE"]).rstrip("/")


def system(name: str) -> str:
    """The canonical URL of our CodeSystem ``name`` (also its id)."""
    return f"{base()}/CodeSystem/{name}"


def extension_url(name: str) -> str:
    return f"{base()}/StructureDefinition/{name}"


def questionnaire_url(key: str) -> str:
    return f"{base()}/Questionnaire/{key}"


def answer_system_name(item: str) -> str:
    return "answer-" + item.replace("_", "-")


def display_of(code: str) -> str:
    return code.replace("_", " ").capitalize()


def coding(name: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system(name), "code": code, "display": display or display_of(code)}


def concept(name: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(name, code, display)]}


def _static_systems() -> dict[str, dict[str, str]]:
    from backend.alerts.models import OUTCOMES, SYSTEM_OUTCOMES
    from backend.alerts.rules import ALERT_KINDS, SEVERITIES
    from backend.patients import models as p
    from backend.questionnaires.models import SOURCES

    def plain(values: Iterable[str]) -> dict[str, str]:
        return {v: display_of(v) for v in values}

    return {
        "procedure-kind": dict(PROCEDURE_KIND_DISPLAY),
        "body-site": plain(p.LOCATIONS),
        "laterality": plain(p.SIDES),
        "etiology": plain(p.ETIOLOGIES),
        "alert-kind": plain(ALERT_KINDS),
        "alert-severity": plain(SEVERITIES),
        "alert-outcome": plain((*OUTCOMES, *SYSTEM_OUTCOMES)),
        "patient-status": plain(p.PATIENT_STATUSES),
        "consent-purpose": plain(p.CONSENT_PURPOSES),
        "response-source": plain(SOURCES),
        "task-output": {"outcome": "Outcome of the nurse's triage"},
    }


def _instrument_systems(definitions: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """``item`` (every item key) and one ``answer-<item>`` per choice item, over all versions."""
    items: dict[str, str] = {}
    answers: dict[str, dict[str, str]] = {}
    for definition in definitions:
        for item in definition.get("items", []):
            items.setdefault(item["id"], item["text"].get("en") or display_of(item["id"]))
            for option in item.get("options", []):
                name = answer_system_name(item["id"])
                answers.setdefault(name, {}).setdefault(
                    str(option["value"]), option["text"].get("en") or str(option["value"])
                )
    return {"item": items, **answers}


def all_systems(
    definitions: Iterable[Mapping[str, Any]], site_codes: Iterable[tuple[str, str]]
) -> dict[str, dict[str, str]]:
    """Every CodeSystem of ours: name -> {code: display}."""
    return {
        **_static_systems(),
        **_instrument_systems(definitions),
        "site": {code: name for code, name in site_codes},
    }


def code_system_resource(name: str, concepts: Mapping[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": name,
        "url": system(name),
        "version": "1",
        "name": "".join(part.capitalize() for part in name.split("-")),
        "status": "active",
        "experimental": False,
        "publisher": "IR follow-up",
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": [{"code": code, "display": display} for code, display in concepts.items()],
    }
