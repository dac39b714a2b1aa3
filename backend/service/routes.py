"""Service endpoints: health."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import Blueprint as FlaskBlueprint
from flask.views import MethodView
from flask_smorest import Blueprint

from backend import fields
from backend.errors import Problem, problems
from backend.extensions import db

blp = Blueprint("service", __name__, url_prefix="/api/v1", description="Service status")
log = logging.getLogger(__name__)


class HealthSchema(ma.Schema):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "ok"})


@blp.route("/health")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    @problems(blp, 503)
    def get(self) -> dict[str, Any]:
        """Liveness and database reachability (no authentication)"""
        try:
            db.session.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            db.session.rollback()
            log.warning(
                "health check: database unreachable", extra={"error_type": type(exc).__name__}
            )
            raise Problem(
                "The database is unreachable.",
                status=503,
                title="Service Unavailable",
                slug="service-unavailable",
                extra={"database": "unreachable"},
            ) from exc
        return {"status": "ok", "database": "ok"}


def swagger_assets_blueprint() -> FlaskBlueprint:
    """Swagger UI's JavaScript and CSS, from the flask-swagger-ui package (no CDN needed).

    The name starts with ``api-docs`` like flask-smorest's own docs endpoints: documentation
    plumbing, not an API operation."""
    import flask_swagger_ui

    dist = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
    return FlaskBlueprint(
        "api-docs-assets",
        __name__,
        static_folder=str(dist),
        static_url_path="/api/v1/docs/assets",
    )
