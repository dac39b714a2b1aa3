"""The one-way dependencies docs/design.md draws, checked on the source (every import, lazy
ones inside functions included): a change that points an arrow the other way fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend"


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def offenders(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} -> {name}"
        for path in paths
        for name in imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def test_the_notifications_library_imports_nothing_of_the_application():
    assert offenders(files(ROOT / "notifications"), ("backend",)) == []


@pytest.mark.parametrize(
    "sender", ["backend/patients", "backend/questionnaires", "backend/schedule"]
)
def test_a_domain_that_sends_the_alert_engine_its_events_never_imports_it(sender):
    # Responses, missed questionnaires and stopped follow-ups reach the alerts through signals
    # (backend/signals.py), connected in create_app: the senders do not know their receivers.
    assert offenders(files(ROOT / sender), ("backend.alerts",)) == []


def test_the_outbox_imports_none_of_the_domains_that_send_through_it():
    forbidden = ("backend.alerts", "backend.schedule", "backend.research", "backend.web")
    assert offenders(files(BACKEND / "notify"), forbidden) == []


def test_the_outbox_knows_no_questionnaire_and_reads_recipients_in_one_place():
    # What a message is about stays with the domain that enqueued it (outbox_still_wanted);
    # contact points are read by recipients.py (and disabled by contacts.py) alone.
    assert offenders(files(BACKEND / "notify"), ("backend.questionnaires.models",)) == []
    others = [
        p for p in files(BACKEND / "notify") if p.name not in ("recipients.py", "contacts.py")
    ]
    assert offenders(others, ("backend.patients", "backend.auth.models")) == []


def test_no_domain_imports_the_nurse_pages_or_a_route():
    # The pages and the routes are the top: they call services, nothing calls them back.
    below = [p for p in files(BACKEND) if p.parent.name != "web" and "web" not in p.parts]
    below = [p for p in below if p != BACKEND / "__init__.py" and p.name != "routes.py"]
    found = offenders(below, ("backend.web",))
    found += [
        f"{path.relative_to(ROOT)} -> {name}"
        for path in below
        for name in imports(path)
        if name.startswith("backend.") and name.split(".")[-1] == "routes"
    ]
    assert found == []


def test_models_import_no_service_schema_route_or_page():
    layers = ("services", "schemas", "routes", "presenters", "views", "jobs")
    found = [
        f"{path.relative_to(ROOT)} -> {name}"
        for path in BACKEND.rglob("models.py")
        for name in imports(path)
        if name.startswith("backend.") and set(name.split(".")) & set(layers)
    ]
    assert found == []


# Pure modules: standard library only, or another pure module (the rules run in the simulator
# and the tests without an application; quiet hours read one setting of the current app).
PURE = {
    "backend/alerts/rules.py": (),
    "backend/alerts/wording.py": (),
    "backend/questionnaires/planning.py": (),
    "backend/questionnaires/vocabulary.py": (),
    "backend/batches.py": (),
    "backend/notify/quiet_hours.py": ("flask",),
}
PURE_MODULES = {p.removesuffix(".py").replace("/", ".") for p in PURE}


@pytest.mark.parametrize("module", sorted(PURE))
def test_a_pure_module_imports_only_the_standard_library_and_other_pure_modules(module):
    import sys

    allowed = PURE[module]
    found = [
        name
        for name in imports(ROOT / module)
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] not in allowed
        and not any(name == m or name.startswith(m + ".") for m in PURE_MODULES)
        and name not in {"backend.alerts", "backend.questionnaires"}  # `from package import`
    ]
    assert found == []
