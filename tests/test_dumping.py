"""The compiled dump (``backend.dumping``) gives what marshmallow's own dump gives: on a schema
with every kind of field, value and absence, and on the alert queue and the timeline as the API
serves them from a real database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import marshmallow as ma
import pytest

from backend import fields
from backend.alerts import services as alerts
from backend.alerts import workflow
from backend.alerts.presenters import present_page
from backend.alerts.schemas import AlertListSchema
from backend.dumping import CompiledDumpSchema, reference_dump
from backend.extensions import db
from backend.patients.timeline import TimelineSchema, build_timeline
from tests.conftest import bearer, login
from tests.factories import checkin_answers, make_patient, make_procedure, principal_of, record

WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


class Leaf(ma.Schema):
    id = fields.UUID()
    name = fields.String()


class Hooked(ma.Schema):
    name = fields.String()

    @ma.post_dump
    def shout(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**data, "name": str(data.get("name")).upper()}


class Everything(CompiledDumpSchema):
    id = fields.UUID()
    text = fields.String()
    renamed = fields.String(data_key="outName")
    other_attribute = fields.String(attribute="source")
    dotted = fields.String(attribute="leaf.name")
    count = fields.Integer()
    ratio = fields.Float()
    money = ma.fields.Decimal(as_string=True)
    flag = fields.Boolean()
    at = fields.DateTime()
    aware = fields.AwareDateTime()
    stamped = ma.fields.DateTime(format="%Y/%m/%d")
    day = fields.Date()
    blob = fields.Dict()
    typed = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    raw = ma.fields.Raw()
    leaf = fields.Nested(Leaf, allow_none=True)
    leaves = fields.Nested(Leaf, many=True)
    listed = fields.List(fields.Nested(Leaf))
    names = fields.List(fields.String())
    hooked = fields.Nested(Hooked)
    method = ma.fields.Method("twice")
    function = ma.fields.Function(lambda obj: "f")
    secret = fields.String(load_only=True)
    defaulted = fields.String(dump_default="the default")

    def twice(self, obj: Any) -> Any:
        return 2 * len(str(obj))


def full() -> dict[str, Any]:
    leaf = {"id": uuid.uuid4(), "name": "leaf"}
    return {
        "id": uuid.uuid4(),
        "text": "texte",
        "renamed": "r",
        "source": "s",
        "count": 3,
        "ratio": 0.5,
        "money": Decimal("1.10"),
        "flag": True,
        "at": WHEN,
        "aware": WHEN,
        "stamped": WHEN,
        "day": date(2026, 12, 1),
        "blob": {"signals": [{"a": 1}]},
        "typed": {"a": 1},
        "raw": [1, "x"],
        "leaf": leaf,
        "leaves": [leaf, leaf],
        "listed": [leaf],
        "names": ["a", b"b"],
        "hooked": {"name": "loud"},
        "secret": "never shown",
        "defaulted": "given",
    }


@dataclass
class Thing:
    id: uuid.UUID
    text: str | None
    leaf: Any = None


@pytest.mark.parametrize(
    "obj",
    [
        full(),
        {key: None for key in full()},  # every value null
        {},  # every value absent: left out, or the field's default
        {"id": uuid.uuid4(), "leaf": {"id": uuid.uuid4()}},  # a nested object missing a field
        Thing(uuid.uuid4(), "an object, read by attribute", {"id": uuid.uuid4(), "name": "n"}),
        Thing(uuid.uuid4(), None),  # an object without some attributes: their defaults
        MappingProxyType(full()),  # a mapping that is not a dict: read by each field
    ],
    ids=["full", "nulls", "absent", "partial", "object", "object-partial", "mapping"],
)
def test_the_compiled_dump_gives_what_marshmallow_gives_for_every_kind_of_field(obj):
    schema = Everything()
    assert schema.dump(obj) == reference_dump(schema, obj)
    assert schema.dump([obj, obj], many=True) == ma.Schema.dump(schema, [obj, obj], many=True)


def test_the_compiled_dump_keeps_the_schema_s_only_and_exclude():
    only, without = Everything(only=("id", "leaf")), Everything(exclude=("text", "leaves"))
    obj = full()
    assert only.dump(obj) == reference_dump(only, obj) and set(only.dump(obj)) == {"id", "leaf"}
    assert without.dump(obj) == reference_dump(without, obj)
    assert "text" not in without.dump(obj)
    assert Everything().dump(obj) == reference_dump(Everything(), obj)  # not the other plans'


def test_a_schema_with_dump_hooks_is_dumped_by_marshmallow_itself():
    class Loud(CompiledDumpSchema):
        name = fields.String()

        @ma.post_dump
        def shout(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
            return {"name": data["name"].upper()}

    assert Loud().dump({"name": "ada"}) == {"name": "ADA"}


def queue_of_every_kind(nurse, clock) -> list[Any]:
    """Alerts open, acknowledged, owned, snoozed, seen, resolved, of two severities."""
    principal = principal_of(nurse)
    raised = []
    for n, answers in enumerate(
        [checkin_answers(symptoms=["chest_pain"])] * 3 + [checkin_answers(call_request=True)] * 3
    ):
        patient = make_patient(nurse, given_name=f"P{n}", mrn=f"D-{uuid.uuid4().hex[:10]}")
        make_procedure(nurse, patient)
        record(patient, clock.now(), answers=answers)
    raised = list(db.session.execute(db.select(alerts.Alert)).scalars())
    urgent = [a for a in raised if a.severity == "urgent"]
    other = [a for a in raised if a.severity != "urgent"]
    now = clock.now()
    alerts.acknowledge(principal, urgent[0], now)
    workflow.set_owner(principal, urgent[1], nurse.id, None, now)
    workflow.mark_seen(principal, urgent[2], now)
    workflow.snooze(principal, other[0], now + timedelta(hours=10), "calling back tonight", now)
    workflow.snooze(principal, other[1], now + timedelta(minutes=1), "in a minute", now)
    alerts.resolve(principal, other[2], "false_alarm", "a note", now)
    db.session.commit()
    clock.set(now + timedelta(hours=5))  # the second snooze is over, the urgent ones overdue
    return raised


def the_three_queues(
    nurse, now, columns: bool = False, locale: str = "fr"
) -> list[tuple[list[Any], str | None]]:
    """The first page and cursor of the queue a nurse reads (open and acknowledged), of the
    resolved alerts, and of the snoozed ones (``columns``: read as columns, as the API and the
    queue page read them)."""
    principal = principal_of(nurse)
    unresolved = ("open", "acknowledged")
    return [
        alerts.queue(
            principal,
            now,
            statuses=statuses,
            severity=None,
            kind=None,
            patient_id=None,
            limit=50,
            snoozed=snoozed,
            columns=columns,
            locale=locale,
        )
        for statuses, snoozed in [(unresolved, False), (("resolved",), False), (unresolved, True)]
    ]


def test_the_queue_dumped_as_the_api_serves_it_is_what_marshmallow_gives(nurse_ada, clock):
    queue_of_every_kind(nurse_ada, clock)
    now = clock.now()
    for page, cursor in the_three_queues(nurse_ada, now):
        body = {"items": present_page(page, now, "fr"), "next_cursor": cursor}
        assert page
        assert AlertListSchema().dump(body) == reference_dump(AlertListSchema(), body)


def test_the_queue_s_one_step_dump_is_marshmallow_s_dump_of_the_presented_page(nurse_ada, clock):
    """``dump_page`` (what ``GET /alerts`` serves) against marshmallow's own dump of
    ``present_page`` (what it served before), for alerts open, acknowledged, owned, seen,
    snoozed, back from snooze, overdue and resolved, in both languages: the same items, the
    same keys in the same order, the same values and types (``True`` is not ``1``)."""
    from backend.alerts.presenters import dump_page
    from backend.alerts.schemas import AlertSchema

    raised = queue_of_every_kind(nurse_ada, clock)
    now = clock.now()
    compared = 0
    for page, _ in the_three_queues(nurse_ada, now):
        for locale in ("en", "fr"):
            fast = dump_page(page, now, locale)
            slow = reference_dump(AlertSchema(many=True), present_page(page, now, locale))
            assert [list(a.items()) for a in fast] == [list(a.items()) for a in slow]
            assert [[type(v) for v in a.values()] for a in fast] == [
                [type(v) for v in a.values()] for a in slow
            ]
            compared += len(page)
        fast_fr = fast
    assert compared == 2 * len(raised)
    assert list(fast[0]) == list(AlertSchema().fields)  # every field of the contract
    # An alert or patient whose columns are not all loaded is read attribute by attribute.
    patient = page[-1].patient
    db.session.expire(page[0])
    db.session.expire(patient)
    assert dump_page(page, now, "fr") == fast_fr


def test_the_queue_read_as_columns_dumps_as_its_entities_do(nurse_ada, clock):
    """``dump_rows`` of the queue read as columns (what ``GET /alerts`` serves) against
    ``dump_page`` of the same queue read as entities and marshmallow's dump of its presented
    page, for alerts in every state, both languages, pages of one and of fifty (the cursors
    too): the columns read are every field ``AlertSchema`` dumps, with the same values."""
    from backend.alerts.presenters import dump_page, dump_rows
    from backend.alerts.schemas import AlertSchema

    raised = queue_of_every_kind(nurse_ada, clock)
    # Summaries the language falls back on: none in English, an empty English one, none in
    # either language, English only.
    for alert, summary in zip(
        raised,
        [{"fr": "seulement"}, {"en": "", "fr": "vide en anglais"}, {}, {"en": "only English"}],
        strict=False,
    ):
        alert.summary = summary
    db.session.flush()
    now = clock.now()
    compared, summaries = 0, {}
    for locale in ("en", "fr", "de"):
        for (rows, row_cursor), (page, cursor) in zip(
            the_three_queues(nurse_ada, now, columns=True, locale=locale),
            the_three_queues(nurse_ada, now),
            strict=True,
        ):
            assert row_cursor == cursor
            fast = dump_rows(rows, now)
            slow = reference_dump(AlertSchema(many=True), present_page(page, now, locale))
            assert [list(a.items()) for a in fast] == [list(a.items()) for a in slow]
            assert fast == dump_page(page, now, locale)
            assert [[type(v) for v in a.values()] for a in fast] == [
                [type(v) for v in a.values()] for a in slow
            ]
            compared += len(rows)
            summaries.update((a["id"], a["summary"]) for a in fast)  # German last
    assert compared == 3 * len(raised)
    assert list(fast[0]) == list(AlertSchema().fields)
    # No summary is in German: French, else nothing.
    expected = ["seulement", "vide en anglais", "", ""]
    assert [summaries[str(alert.id)] for alert in raised[:4]] == expected
    principal = principal_of(nurse_ada)
    for limit in (1, 2):  # a cursor in the middle of the queue, read both ways
        pages = [
            alerts.queue(
                principal,
                now,
                statuses=("open", "acknowledged"),
                severity=None,
                kind=None,
                patient_id=None,
                limit=limit,
                columns=columns,
                locale="en",
            )
            for columns in (True, False)
        ]
        assert pages[0][1] is not None and pages[0][1] == pages[1][1]
        assert dump_rows(pages[0][0], now) == dump_page(pages[1][0], now, "en")


def test_the_queue_served_by_the_api_names_every_field_of_the_contract(client, nurse_ada, clock):
    queue_of_every_kind(nurse_ada, clock)
    headers = bearer(login(client, nurse_ada)["access_token"])
    items = client.get("/api/v1/alerts", headers=headers).get_json()["items"]
    owned = next(a for a in items if a["owner"])
    assert owned["owner"]["id"] == str(nurse_ada.id) and owned["owned_since"].endswith("+00:00")
    assert set(owned["patient"]) == {"id", "mrn", "given_name", "family_name"}
    assert {a["status"] for a in items} == {"open", "acknowledged"}
    assert any(a["back_from_snooze"] for a in items) and any(a["overdue"] for a in items)
    assert all(a["evidence"]["signals"] for a in items)


def nurse_enters_a_checkin(client, nurse, patient, clock):
    """A check-in a nurse typed in during a call (``POST /patients/{id}/responses``): its 201."""
    headers = {
        **bearer(login(client, nurse)["access_token"]),
        "Idempotency-Key": str(uuid.uuid4()),
    }
    entered = client.post(
        f"/api/v1/patients/{patient.id}/responses",
        json={
            "assignment_id": None,
            "instrument": "checkin",
            "version": 1,
            "answered_at": clock.now().isoformat(),
            "source": "nurse",
            "answers": checkin_answers(),
        },
        headers=headers,
    )
    assert entered.status_code == 201, entered.get_json()
    return entered


def test_the_timeline_dumped_as_the_api_serves_it_is_what_marshmallow_gives(
    client, nurse_ada, clock
):
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    for day in range(1, 4):
        record(patient, clock.now() + timedelta(days=day), answers=checkin_answers())
    red_flag = checkin_answers(symptoms=["chest_pain"])
    record(patient, clock.now() + timedelta(days=4), answers=red_flag)
    clock.set(clock.now() + timedelta(days=5))
    nurse_enters_a_checkin(client, nurse_ada, patient, clock)  # the timeline names who
    timeline = build_timeline(db.session.merge(patient), clock.now(), "en")
    assert len(timeline["responses"]) == 5 and timeline["alerts"]
    assert TimelineSchema().dump(timeline) == reference_dump(TimelineSchema(), timeline)


def test_the_answer_as_its_sender_is_told_of_it_is_what_marshmallow_gives(client, nurse_ada, clock):
    """The 201 of ``POST /me/responses`` and of a nurse's entry, with and without the
    emergency advice, dumped by the compiled plan and by marshmallow."""
    from backend.questionnaires import services as questionnaires
    from backend.questionnaires.schemas import ResponseCreatedSchema, StaffResponseCreatedSchema

    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient)
    calm = record(patient, clock.now() + timedelta(days=1), answers=checkin_answers())
    urgent = record(
        patient, clock.now() + timedelta(days=2), answers=checkin_answers(symptoms=["chest_pain"])
    )
    clock.set(clock.now() + timedelta(days=3))
    entered = nurse_enters_a_checkin(client, nurse_ada, patient, clock)
    patient = db.session.merge(patient)
    by_nurse = db.session.get(questionnaires.Response, uuid.UUID(entered.get_json()["id"]))
    told = [
        questionnaires.Answered(response, questionnaires.advice_for(response, patient))
        for response in (db.session.merge(calm), db.session.merge(urgent), by_nurse)
    ]
    assert [a.advice is not None for a in told] == [False, True, False]
    assert by_nurse is not None and by_nurse.entered_by_id == nurse_ada.id
    for schema in (ResponseCreatedSchema(), StaffResponseCreatedSchema()):
        for answered in told:
            assert schema.dump(answered) == reference_dump(schema, answered)
