"""The alert rules' wording, French and English, in one place: each signal's one-sentence
summary, the key numbers first, stored with the alert (``Alert.summary``) and shown by the API
and the pages in the caller's language (``backend.locales.pick``); and the evidence in words
(``reported``, ``reason``, ``references``: what the nurse's alert page lists), read from the
evidence the rules stored, in the language asked for.

Pure, standard library only, like the rules (``backend.alerts.rules``), which decide and call
this module to say what they decided; nothing here decides whether a rule fires.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from functools import partial
from typing import TYPE_CHECKING, Any

from backend.questionnaires.vocabulary import AID_LEVELS, ANALGESIC_STEPS

if TYPE_CHECKING:
    from backend.alerts.rules import Reason, ResponseFacts, _Reference


_SYMPTOM_TEXT = {
    "clicking": ("clicking", "claquement"),
    "giving_way": ("giving way", "dérobement"),
    "entry_point_bump": ("a bump at the entry point", "bosse au point d'entrée"),
    "new_contralateral_pain": ("new pain on the other side", "nouvelle douleur du côté opposé"),
    "wound_redness": ("wound redness", "rougeur de la cicatrice"),
    "wound_discharge": ("wound discharge", "écoulement de la cicatrice"),
    "fever": ("fever", "fièvre"),
    "leg_weakness": ("leg weakness", "faiblesse des jambes"),
    "numbness": ("numbness", "engourdissement"),
    "bladder_bowel": ("bladder or bowel trouble", "troubles urinaires ou intestinaux"),
    "breathlessness": ("breathlessness", "essoufflement"),
    "chest_pain": ("chest pain", "douleur thoracique"),
}
_ANALGESIC_TEXT = (
    ("no analgesic", "aucun antalgique"),
    ("a non-opioid analgesic", "un antalgique non opioïde"),
    ("a weak opioid", "un opioïde faible"),
    ("a strong opioid", "un opioïde fort"),
)
_AID_TEXT = (
    ("no aid", "aucune aide"),
    ("a cane", "une canne"),
    ("crutches", "des béquilles"),
    ("a walker", "un déambulateur"),
    ("help from another person", "l'aide d'une personne"),
    ("unable to walk", "incapable de marcher"),
)
_CHANGE_TEXT = {
    "much_worse": ("feels much worse", "se sent nettement moins bien"),
    "very_much_worse": ("feels very much worse", "se sent beaucoup moins bien"),
}
_CAUSE_TEXT = {
    "nerve_symptom": (
        "possible nerve injury or cement leak",
        "atteinte nerveuse ou fuite de ciment possible",
    ),
    "embolism_symptom": ("possible cement embolism", "embolie de ciment possible"),
    "infection": ("possible infection", "infection possible"),
}
_EN, _FR = 0, 1
_LANGS = {"en": _EN, "fr": _FR}
_CLAUSE_SEPARATORS = {"en": "; ", "fr": " ; "}  # French sets a space before a semicolon

Text = tuple[str, str]


def _num(value: Fraction | int, lang: str) -> str:
    value = Fraction(value)
    text = str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
    return text.replace(".", ",") if lang == "fr" else text


def _join(items: Sequence[str], lang: str) -> str:
    last = " and " if lang == "en" else " et "
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + last + items[-1]


def _days(days: Iterable[int], lang: str, preposition: bool = True) -> str:
    unique = [str(d) for d in sorted(set(days))]
    one = len(unique) == 1
    if lang == "en":
        word = "day " if one else "days "
        return ("on " if preposition else "") + word + _join(unique, "en")
    if preposition:
        return ("au jour " if one else "aux jours ") + _join(unique, "fr")
    return ("jour " if one else "jours ") + _join(unique, "fr")


def _symptoms(symptoms: Iterable[str]) -> Text:
    texts = [_SYMPTOM_TEXT.get(s, (s, s)) for s in sorted(symptoms)]
    return _join([t[_EN] for t in texts], "en"), _join([t[_FR] for t in texts], "fr")


def _when(details: Mapping[str, Any]) -> Text:
    """Where a reference point came from: a response's day or the pre-procedure baseline."""
    if details.get("source") == "response":
        return _days([details["day"]], "en"), _days([details["day"]], "fr")
    return "before the procedure", "avant la procédure"


def _pain_clauses(
    reasons: Sequence[Reason], response: ResponseFacts, ref: _Reference
) -> list[Text]:
    """Loosening or pain recurrence: walking pain against the nadir, then each route."""
    nadir = ref.nadir
    assert nadir is not None  # every route to these alerts is measured from the nadir
    pain = response.pain_walking
    days = [r.day for r in nadir.responses]
    best_en, best_fr = _num(nadir.value, "en"), _num(nadir.value, "fr")
    days_fr = _days(days, "fr")
    if nadir.settled:
        lead_en = (
            f"Walking pain {pain}/10, up from its settled {best_en}/10 ({_days(days, 'en', False)})"
        )
        lead_fr = (
            f"Douleur à la marche {pain}/10, contre un niveau stable de {best_fr}/10 "
            f"({_days(days, 'fr', False)})"
        )
    else:
        lead_en = f"Walking pain {pain}/10, up from a best of {best_en}/10 {_days(days, 'en')}"
        lead_fr = (
            f"Douleur à la marche {pain}/10, contre un meilleur niveau de {best_fr}/10 {days_fr}"
        )
    clauses: list[Text] = []
    codes = {reason.code for reason in reasons}
    if codes & {"no_relief", "pain_recurrence", "mechanical_sign", "mobility_decline"} == {
        "no_relief"
    }:
        lead_en, lead_fr = _no_relief_lead(next(r for r in reasons if r.code == "no_relief"), ref)
    for reason in reasons:
        d = reason.details
        if reason.code == "no_relief":
            if (
                "pain_recurrence" in codes
                or "mechanical_sign" in codes
                or ("mobility_decline" in codes)
            ):
                b = d["baseline_pain_walking"]
                clauses.append(
                    (
                        f"never relieved by 2 points or 30 % from its pre-procedure {b}/10",
                        f"jamais soulagée de 2 points ou 30 % par rapport à son niveau "
                        f"d'avant la procédure ({b}/10)",
                    )
                )
        elif reason.code == "pain_recurrence":
            if "rise" not in d["routes"]:
                b = d["baseline_pain_walking"]
                lead_en += f", back to its pre-procedure {b}/10"
                lead_fr += f", revenue à son niveau d'avant la procédure ({b}/10)"
            if d["confirmed"]:
                lead_en += ", second report in a row"
                lead_fr += ", deuxième réponse de suite"
            elif d.get("corroborated_by") and not d["immediate"]:
                lead_en += ", with another sign of the same trouble"
                lead_fr += ", avec un autre signe allant dans le même sens"
            else:
                lead_en += ", severe in a single report"
                lead_fr += ", sévère dès une seule réponse"
        elif reason.code == "mechanical_sign":
            en, fr = _symptoms(d["symptoms"])
            clauses.append((f"new {en}", f"signe mécanique ({fr})"))
        elif reason.code == "mobility_decline":
            clauses.append(_mobility_clause(d))
        else:  # a worsening reason corroborating the recurrence (version 2)
            clauses.append(_clause(reason, response))
    return [(lead_en, lead_fr), *clauses]


def _no_relief_lead(reason: Reason, ref: _Reference) -> Text:
    """Version 2's no-lasting-relief alert: the two high reports, then the best reached."""
    d = reason.details
    nadir = ref.nadir
    assert nadir is not None
    days = [r.day for r in nadir.responses]
    pains, b = (
        f"{d['previous_pain_walking']}/10 then {d['pain_walking']}/10",
        d["baseline_pain_walking"],
    )
    pains_fr = f"{d['previous_pain_walking']}/10 puis {d['pain_walking']}/10"
    best_en, best_fr = _num(nadir.value, "en"), _num(nadir.value, "fr")
    if nadir.settled:
        ref_en = f"settled {best_en}/10, {_days(days, 'en', False)}"
        ref_fr = f"niveau stable {best_fr}/10, {_days(days, 'fr', False)}"
    else:
        ref_en = f"best {best_en}/10 {_days(days, 'en')}"
        ref_fr = f"au mieux {best_fr}/10 {_days(days, 'fr')}"
    return (
        f"Walking pain {pains}, never relieved by 2 points or 30 % from its pre-procedure "
        f"{b}/10 ({ref_en}): no lasting relief",
        f"Douleur à la marche {pains_fr}, jamais soulagée de 2 points ou 30 % par rapport à "
        f"son niveau d'avant la procédure ({b}/10 ; {ref_fr}) : pas de soulagement durable",
    )


def _mobility_clause(d: Mapping[str, Any]) -> Text:
    when_en, when_fr = _when(d)
    score, best = d["mobility_score"], d["best_mobility"]
    return (
        f"mobility score {score}/9, down from a best of {best}/9 {when_en}",
        f"score de mobilité {score}/9, contre {best}/9 au mieux {when_fr}",
    )


def _clause(reason: Reason, response: ResponseFacts) -> Text:
    d = reason.details
    code = reason.code
    if code in ("nerve_symptom", "embolism_symptom", "infection"):
        en, fr = _symptoms(d["symptoms"])
        cause = _CAUSE_TEXT[code]
        return f"{en} ({cause[_EN]})", f"{fr} ({cause[_FR]})"
    if code == "fall_with_pain_rise":
        en, fr = _when(d)
        before = d["previous_pain_walking"]
        return (
            f"a fall with walking pain {d['pain_walking']}/10, up from {before}/10 {en}",
            f"une chute avec douleur à la marche {d['pain_walking']}/10, contre {before}/10 {fr}",
        )
    if code == "newly_unable_to_walk":
        before = d["previous_aid_level"]
        if before is None:
            return "now unable to walk", "ne peut plus marcher"
        en, fr = _when(d)
        aid = _AID_TEXT[before]
        return f"now unable to walk ({aid[_EN]} {en})", f"ne peut plus marcher ({aid[_FR]} {fr})"
    if code == "mobility_decline":
        return _mobility_clause(d)
    if code == "analgesic_escalation":
        en, fr = _when(d)
        now = _ANALGESIC_TEXT[d["analgesic_step"]]
        low = _ANALGESIC_TEXT[d["lowest_analgesic_step"]]
        return (
            f"now on {now[_EN]}, after {low[_EN]} {en}",
            f"passe à {now[_FR]}, après {low[_FR]} {fr}",
        )
    if code == "walking_aid_worse":
        en, fr = _when(d)
        now, best = _AID_TEXT[d["aid_level"]], _AID_TEXT[d["best_aid_level"]]
        return (
            f"walking aid now {now[_EN]}, against {best[_EN]} at best {en}",
            f"aide à la marche : {now[_FR]}, contre {best[_FR]} au mieux {fr}",
        )
    if code == "new_contralateral_pain":
        return _SYMPTOM_TEXT["new_contralateral_pain"]
    if code == "fever_alone":
        return "fever without a wound sign", "fièvre sans signe à la cicatrice"
    if code == "wound_sign_alone":
        en, fr = _symptoms(d["symptoms"])
        return f"{en} without fever", f"{fr} sans fièvre"
    if code == "much_worse":
        return _CHANGE_TEXT.get(d["change"], ("feels much worse", "se sent nettement moins bien"))
    if code == "call_request":
        return (
            f"asks for a nurse to call (walking pain {response.pain_walking}/10, "
            f"at rest {response.pain_rest}/10)",
            f"demande l'appel d'une infirmière (douleur à la marche {response.pain_walking}/10, "
            f"au repos {response.pain_rest}/10)",
        )
    raise ValueError(f"no summary for reason {code!r}")


def summary(
    kind: str, reasons: Sequence[Reason], response: ResponseFacts, ref: _Reference
) -> dict[str, str]:
    if kind in ("possible_screw_loosening", "pain_recurrence"):
        clauses = _pain_clauses(reasons, response, ref)
    else:
        clauses = [_clause(reason, response) for reason in reasons]
    summary: dict[str, str] = {}
    for lang, i in _LANGS.items():
        text = _CLAUSE_SEPARATORS[lang].join(clause[i] for clause in clauses)
        summary[lang] = text[0].upper() + text[1:] + "."
    return summary


def no_response_summary(days: Sequence[int], day: int) -> dict[str, str]:
    """A no_response signal's summary: the run of missed days, or the one day."""
    if len(days) > 1:
        return {
            "en": f"{len(days)} scheduled questionnaires missed in a row "
            f"({_days(days, 'en', preposition=False)}).",
            "fr": f"{len(days)} questionnaires programmés manqués de suite "
            f"({_days(days, 'fr', preposition=False)}).",
        }
    return {
        "en": f"Scheduled questionnaire of day {day} missed.",
        "fr": f"Questionnaire programmé du jour {day} manqué.",
    }


# --------------------------------------------------------------------------------------------
# The evidence in words: what the patient reported, why a rule fired, against what (the nurse's
# alert page reads the evidence the rules stored and says it here, in its language)
# --------------------------------------------------------------------------------------------

# The evidence's phrases: English (the key) -> French. One table for the pages and any caller
# that says an alert's reasons; the summaries above use the same words for the same things.
_EVIDENCE_FR: dict[str, str] = {
    "%(signs)s without fever": "%(signs)s sans fièvre",
    "(back to the pre-procedure %(baseline)s/10)": (
        "(revenue au niveau d'avant la procédure, %(baseline)s/10)"
    ),
    "A fall, with walking pain %(pain)s/10 against %(before)s/10 (%(when)s)": (
        "Une chute, avec une douleur à la marche de %(pain)s/10 contre %(before)s/10 (%(when)s)"
    ),
    "Asks for a nurse to call": "Demande l'appel d'une infirmière",
    "Feels %(change)s": "Se sent : %(change)s",
    "Fever without a wound sign": "Fièvre sans signe à la cicatrice",
    "Mechanical sign (%(signs)s) with walking pain %(pain)s/10, above its best of %(nadir)s/10": (
        "Signe mécanique (%(signs)s) avec une douleur à la marche de %(pain)s/10, au-dessus "
        "de son meilleur niveau (%(nadir)s/10)"
    ),
    "Mobility score %(score)s/9, down from a best of %(best)s/9 (%(when)s)": (
        "Score de mobilité %(score)s/9, contre %(best)s/9 au mieux (%(when)s)"
    ),
    "New pain on the other side": "Nouvelle douleur du côté opposé",
    "No lasting relief: walking pain %(previous)s/10 then %(pain)s/10, never 2 points or 30 "
    "percent below the pre-procedure %(baseline)s/10 (best %(nadir)s/10)": (
        "Pas de soulagement durable : douleur à la marche %(previous)s/10 puis %(pain)s/10, "
        "jamais 2 points ou 30 pour cent sous le niveau d'avant la procédure (%(baseline)s/10 "
        "; au mieux %(nadir)s/10)"
    ),
    "Now on %(now)s, after %(low)s (%(when)s)": "Passe à : %(now)s, après : %(low)s (%(when)s)",
    "Now unable to walk": "Ne peut plus marcher",
    "Now unable to walk; walking aid before: %(aid)s (%(when)s)": (
        "Ne peut plus marcher ; aide à la marche avant : %(aid)s (%(when)s)"
    ),
    "Possible cement embolism: %(symptoms)s": "Embolie de ciment possible : %(symptoms)s",
    "Possible infection: %(symptoms)s": "Infection possible : %(symptoms)s",
    "Possible nerve injury or cement leak: %(symptoms)s": (
        "Atteinte nerveuse ou fuite de ciment possible : %(symptoms)s"
    ),
    "Scheduled questionnaire missed from day 30 on: %(days)s": (
        "Questionnaire programmé manqué à partir du jour 30 : %(days)s"
    ),
    "Scheduled questionnaires missed in a row: %(days)s": (
        "Questionnaires programmés manqués de suite : %(days)s"
    ),
    "Walking aid now %(now)s, against %(best)s at best (%(when)s)": (
        "Aide à la marche : %(now)s, contre %(best)s au mieux (%(when)s)"
    ),
    "Walking pain %(pain)s/10 against a best of %(nadir)s/10": (
        "Douleur à la marche %(pain)s/10, contre un meilleur niveau de %(nadir)s/10"
    ),
    "a fall": "une chute",
    "analgesics: %(value)s": "antalgiques : %(value)s",
    "asks for a nurse to call": "demande l'appel d'une infirmière",
    "before the procedure": "avant la procédure",
    "before the procedure: walking pain %(walking)s/10, rest pain %(rest)s/10": (
        "avant la procédure : douleur à la marche %(walking)s/10, au repos %(rest)s/10"
    ),
    "best mobility score %(value)s/9, %(when)s": "meilleur score de mobilité %(value)s/9, %(when)s",
    "best settled walking pain (nadir) %(value)s/10, %(days)s": (
        "meilleure douleur à la marche stable (nadir) %(value)s/10, %(days)s"
    ),
    "day %(day)s": "jour %(day)s",
    "feels %(value)s": "se sent : %(value)s",
    "mobility score %(value)s/9": "score de mobilité %(value)s/9",
    "no symptom": "aucun symptôme",
    "rest pain %(value)s/10": "douleur au repos %(value)s/10",
    "rule %(key)s, version %(version)s": "règle %(key)s, version %(version)s",
    "second report in a row": "deuxième réponse de suite",
    "settled walking pain (median) %(value)s/10, %(days)s": (
        "niveau stable de douleur à la marche (médiane) %(value)s/10, %(days)s"
    ),
    "severe in a single report": "sévère dès une seule réponse",
    "symptoms: %(value)s": "symptômes : %(value)s",
    "walking aid: %(value)s": "aide à la marche : %(value)s",
    "walking pain %(value)s/10": "douleur à la marche %(value)s/10",
    "with another sign of the same trouble": "avec un autre signe allant dans le même sens",
}
_EVIDENCE_FR_PLURAL = {("day %(days)s", "days %(days)s"): ("jour %(days)s", "jours %(days)s")}

# A stored value's label in the caller's language (the pages pass their vocabulary's labels).
Names = Callable[[Any, str], str]


def _say(locale: str, text: str, **variables: Any) -> str:
    """``text`` in ``locale`` (gettext's rules: formatted only when given variables)."""
    said = _EVIDENCE_FR.get(text, text) if locale == "fr" else text
    return said % variables if variables else said


def _say_days(locale: str, days: Iterable[int]) -> str:
    unique = sorted(set(days))
    joined = ", ".join(map(str, unique))
    forms = ("day %(days)s", "days %(days)s")
    if locale == "fr":
        singular, plural = _EVIDENCE_FR_PLURAL[forms]
        text = plural if len(unique) > 1 else singular
    else:
        text = forms[0] if len(unique) == 1 else forms[1]
    return text % {"days": joined, "num": len(unique)}


def number(value: Any, locale: str) -> str:
    """A stored score for reading: 2.5 is "2,5" in French."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text.replace(".", ",") if locale == "fr" else text


def _symptom_names(values: Iterable[str], names: Names) -> str:
    return ", ".join(names(v, "symptom") for v in values)


def _analgesic(step: int | None, names: Names) -> str:
    return names(ANALGESIC_STEPS[step], "analgesics") if step is not None else ""


def _aid(level: int | None, names: Names) -> str:
    return names(AID_LEVELS[level], "walking_aid") if level is not None else ""


def _since(details: Mapping[str, Any], locale: str) -> str:
    if details.get("source") == "response" and details.get("day") is not None:
        return _say(locale, "day %(day)s", day=details["day"])
    return _say(locale, "before the procedure")


def reported(response: Mapping[str, Any], locale: str, names: Names) -> list[str]:
    """What the patient answered (a stored evidence's ``response``), as short phrases."""
    say = partial(_say, locale)
    out = [
        say("walking pain %(value)s/10", value=response["pain_walking"]),
        say("rest pain %(value)s/10", value=response["pain_rest"]),
    ]
    if response.get("mobility_score") is not None:
        out.append(say("mobility score %(value)s/9", value=response["mobility_score"]))
    out.append(
        say("analgesics: %(value)s", value=_analgesic(response.get("analgesic_step"), names))
    )
    out.append(say("walking aid: %(value)s", value=_aid(response.get("aid_level"), names)))
    if response.get("fell"):
        out.append(say("a fall"))
    symptoms = response.get("symptoms") or []
    out.append(
        say("symptoms: %(value)s", value=_symptom_names(symptoms, names))
        if symptoms
        else say("no symptom")
    )
    if response.get("change"):
        out.append(say("feels %(value)s", value=names(response["change"], "change")))
    if response.get("call_request"):
        out.append(say("asks for a nurse to call"))
    return out


def reason(code: str, d: Mapping[str, Any], locale: str, names: Names) -> str:
    """One reason a rule fired (its code and stored details), with its numbers."""
    say = partial(_say, locale)
    if code == "pain_recurrence":
        text = say(
            "Walking pain %(pain)s/10 against a best of %(nadir)s/10",
            pain=d["pain_walking"],
            nadir=number(d["nadir"], locale),
        )
        if "baseline" in d.get("routes", []):
            text += " " + say(
                "(back to the pre-procedure %(baseline)s/10)", baseline=d["baseline_pain_walking"]
            )
        if d.get("confirmed"):
            text += "; " + say("second report in a row")
        elif d.get("corroborated_by") and not d.get("immediate"):
            text += "; " + say("with another sign of the same trouble")
        elif d.get("immediate"):
            text += "; " + say("severe in a single report")
        return text
    if code == "no_relief":
        return say(
            "No lasting relief: walking pain %(previous)s/10 then %(pain)s/10, never 2 points or "
            "30 percent below the pre-procedure %(baseline)s/10 (best %(nadir)s/10)",
            previous=d["previous_pain_walking"],
            pain=d["pain_walking"],
            baseline=d["baseline_pain_walking"],
            nadir=number(d["nadir"], locale),
        )
    if code == "mechanical_sign":
        return say(
            "Mechanical sign (%(signs)s) with walking pain %(pain)s/10, above its best of "
            "%(nadir)s/10",
            signs=_symptom_names(d["symptoms"], names),
            pain=d["pain_walking"],
            nadir=number(d["nadir"], locale),
        )
    if code == "mobility_decline":
        return say(
            "Mobility score %(score)s/9, down from a best of %(best)s/9 (%(when)s)",
            score=d["mobility_score"],
            best=d["best_mobility"],
            when=_since(d, locale),
        )
    if code == "nerve_symptom":
        return say(
            "Possible nerve injury or cement leak: %(symptoms)s",
            symptoms=_symptom_names(d["symptoms"], names),
        )
    if code == "embolism_symptom":
        return say(
            "Possible cement embolism: %(symptoms)s",
            symptoms=_symptom_names(d["symptoms"], names),
        )
    if code == "infection":
        return say(
            "Possible infection: %(symptoms)s", symptoms=_symptom_names(d["symptoms"], names)
        )
    if code == "fall_with_pain_rise":
        return say(
            "A fall, with walking pain %(pain)s/10 against %(before)s/10 (%(when)s)",
            pain=d["pain_walking"],
            before=d["previous_pain_walking"],
            when=_since(d, locale),
        )
    if code == "newly_unable_to_walk":
        if d.get("previous_aid_level") is None:
            return say("Now unable to walk")
        return say(
            "Now unable to walk; walking aid before: %(aid)s (%(when)s)",
            aid=_aid(d["previous_aid_level"], names),
            when=_since(d, locale),
        )
    if code == "analgesic_escalation":
        return say(
            "Now on %(now)s, after %(low)s (%(when)s)",
            now=_analgesic(d["analgesic_step"], names),
            low=_analgesic(d["lowest_analgesic_step"], names),
            when=_since(d, locale),
        )
    if code == "walking_aid_worse":
        return say(
            "Walking aid now %(now)s, against %(best)s at best (%(when)s)",
            now=_aid(d["aid_level"], names),
            best=_aid(d["best_aid_level"], names),
            when=_since(d, locale),
        )
    if code == "new_contralateral_pain":
        return say("New pain on the other side")
    if code == "fever_alone":
        return say("Fever without a wound sign")
    if code == "wound_sign_alone":
        return say("%(signs)s without fever", signs=_symptom_names(d["symptoms"], names))
    if code == "much_worse":
        return say("Feels %(change)s", change=names(d["change"], "change"))
    if code == "call_request":
        return say("Asks for a nurse to call")
    if code in ("two_missed", "missed_from_day_30"):
        days = _say_days(locale, [m["day"] for m in d.get("missed", [])])
        if code == "two_missed":
            return say("Scheduled questionnaires missed in a row: %(days)s", days=days)
        return say("Scheduled questionnaire missed from day 30 on: %(days)s", days=days)
    return code  # a reason this module does not know yet: its code, rather than nothing


def references(ref: Mapping[str, Any], locale: str) -> list[str]:
    """The reference points a signal was judged against (its stored ``reference``)."""
    say = partial(_say, locale)
    out = []
    nadir = ref.get("nadir")
    if nadir and nadir.get("settled"):  # rules version 2: the median of the settled reports
        out.append(
            say(
                "settled walking pain (median) %(value)s/10, %(days)s",
                value=number(nadir["value"], locale),
                days=_say_days(locale, nadir["days"]),
            )
        )
    elif nadir:
        out.append(
            say(
                "best settled walking pain (nadir) %(value)s/10, %(days)s",
                value=number(nadir["value"], locale),
                days=_say_days(locale, nadir["days"]),
            )
        )
    best = ref.get("best_mobility")
    if best:
        out.append(
            say(
                "best mobility score %(value)s/9, %(when)s",
                value=best["value"],
                when=_since(best, locale),
            )
        )
    baseline = ref.get("baseline") or {}
    if baseline:
        out.append(
            say(
                "before the procedure: walking pain %(walking)s/10, rest pain %(rest)s/10",
                walking=baseline.get("pain_walking"),
                rest=baseline.get("pain_rest"),
            )
        )
    return out


def rule_name(rule: Mapping[str, Any], locale: str) -> str:
    """The rule and version a signal came from."""
    return _say(
        locale,
        "rule %(key)s, version %(version)s",
        key=rule.get("key"),
        version=rule.get("version"),
    )
