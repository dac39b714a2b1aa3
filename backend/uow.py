"""One unit of work per request: the request commits once, after its response is built.

Routes and views parse, call services and serialise; they never commit. Services flush but never
commit. When the view has returned (its response built, so every row it shows was read inside the
transaction, never re-read after a commit expired it), ``after_request`` commits a success
(status < 400) and rolls back an error, so a refused request stores nothing half-way.

Some errors must still keep what they wrote: the audit row of a failed sign-in, the revocation of
a whole refresh chain on reuse, the read audit of a form page shown again with its errors. The
code that wants this says so with ``keep_on_error()`` after discarding anything it must not keep.

A commit that fails (the database gone, a constraint only checked at commit) is answered by the
app's error handlers (503 with ``Retry-After`` for an outage), never as a success. Jobs and
commands have their own unit of work: they commit where their docstring says.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, Response, g

from backend.extensions import db


def keep_on_error() -> None:
    """Commit this request's work even though its response is an error."""
    g._uow_keep = True


def init_app(app: Flask) -> None:
    @app.after_request
    def _finish(response: Response) -> Response:
        keep = g.pop("_uow_keep", False)
        if response.status_code >= 400 and not keep:
            db.session.rollback()
            return response
        try:
            db.session.commit()
        except (
            sa.exc.SQLAlchemyError
        ) as error:  # answered as the handlers answer it (503 for an outage)
            db.session.rollback()
            return app.make_response(app.handle_user_exception(error))
        return response
