"""Every resource type produced from `make run`'s demo cohort validates against FHIR R4 (the
R4B models of fhir.resources 8.x), and every code of ours is in our CodeSystems."""

from __future__ import annotations

import uuid

from backend import demo
from backend.auth.models import Site, User
from backend.auth.services import staff_principal
from backend.demo import seed
from backend.extensions import db
from backend.patients.models import Patient
from backend.research.randomisation import create_study, randomise
from backend.research.services import included_patients
from tests.conftest import T0
from tests.fhir.conftest import EC_KEY, RSA_KEY, register
from tests.fhir.helpers import our_code_systems, run_export, search_all, unknown_codes
from tests.research.conftest import give_research_consent

SEARCHED = (
    "Patient",
    "Procedure",
    "Questionnaire",
    "QuestionnaireResponse",
    "ClinicalImpression",
    "Task",
    "Consent",
    "ResearchStudy",
    "ResearchSubject",
    "CodeSystem",
)


def _randomise_one(site: Site) -> None:
    """A trial at the demo site with one consented patient randomised."""
    physician = db.session.execute(db.select(User).filter_by(site_id=site.id)).scalars().first()
    actor = staff_principal(physician, uuid.uuid4())
    study = create_study(
        site_id=site.id, key="trial-1", title="Cement vs cement + screws",
        arms=["cement", "cement_screws"], strata={}, block_sizes=[2], now=T0, actor=actor,
    )  # fmt: skip
    patient = included_patients(site.id)[0].patient
    randomise(actor, study, db.session.get(Patient, patient.id), {}, now=T0)
    db.session.commit()


def test_every_resource_type_of_the_demo_cohort_validates_and_our_codes_are_ours(
    client, runner, tmp_path, clock, monkeypatch
):
    # The demo's patients with their histories; not the 320 synthetic research patients
    # (the same mapping, a minute of validation for nothing more), who consent here instead.
    monkeypatch.setattr(
        demo, "SEEDS", tuple(s for s in demo.SEEDS if s.__name__ != "_seed_research_cohort")
    )
    assert seed()
    site = db.session.execute(db.select(Site)).scalars().first()
    for patient in db.session.execute(db.select(Patient)).scalars().all()[:4]:
        give_research_consent(patient, patient.procedures[0].discharged_on)
    _randomise_one(site)
    client.application.config["RESEARCH_PSEUDONYM_KEY"] = "r" * 40
    ehr = register(runner, tmp_path, name="ehr", site=site.code, access="care", key=EC_KEY)
    warehouse = register(
        runner, tmp_path, name="wh", site=site.code, access="research", key=RSA_KEY
    )
    care = ehr.headers(client)
    systems = our_code_systems(client, care)

    seen = {}
    for name in SEARCHED:
        resources = search_all(client, care, f"{name}?_count=200")
        assert resources, f"the demo cohort produced no {name}"
        assert {r["resourceType"] for r in resources} == {name}
        seen[name] = resources
    everything = [r for resources in seen.values() for r in resources]
    assert not unknown_codes(everything, systems)
    # The nurse's triage leaves an outcome and a priority; the answers are typed.
    assert any(t["status"] == "in-progress" for t in seen["Task"])
    assert {t["priority"] for t in seen["Task"]} >= {"stat", "urgent"}
    assert any(
        "valueInteger" in a for qr in seen["QuestionnaireResponse"] for i in qr["item"]
        for a in i["answer"]
    )  # fmt: skip

    research = run_export(client, warehouse.headers(client), f"{site.code}-research", clock.now())
    research.pop("_status_url")
    assert set(research) == {
        "Patient", "Procedure", "Questionnaire", "QuestionnaireResponse", "ClinicalImpression",
        "Task", "ResearchStudy", "ResearchSubject",
    }  # fmt: skip
    assert not unknown_codes([r for rs in research.values() for r in rs], systems)


def test_questionnaires_carry_our_item_keys_both_languages_and_loinc_for_pain(client, ehr_lyon):
    from fhir.resources.R4B.questionnaire import Questionnaire

    headers = ehr_lyon.headers(client)
    checkin = client.get("/fhir/R4/Questionnaire/checkin-1", headers=headers).get_json()
    Questionnaire.model_validate(checkin)
    assert checkin["url"].endswith("/Questionnaire/checkin") and checkin["version"] == "1"
    items = {i["linkId"]: i for i in checkin["item"]}
    assert list(items)[:2] == ["pain_rest", "pain_walking"]
    walking = items["pain_walking"]
    assert {"system": "http://loinc.org", "code": "72514-3"}.items() <= walking["code"][1].items()
    assert walking["text"].startswith("Quelle est votre douleur")
    translation = walking["_text"]["extension"][0]
    assert translation["url"] == "http://hl7.org/fhir/StructureDefinition/translation"
    assert {"url": "lang", "valueCode": "en"} in translation["extension"]
    options = [o["valueCoding"]["code"] for o in items["analgesics"]["answerOption"]]
    assert options == ["none", "non_opioid", "weak_opioid", "strong_opioid"]
    assert items["symptoms"]["repeats"] is True
    assert "72514-3" not in str(items["analgesics"])
