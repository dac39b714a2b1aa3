"""Extensions are created here and initialised in the application factory."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from backend.db import Base


def _address_key() -> str:
    from backend.auth.throttle import address_key

    return address_key()


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
# Limits are declared on the views that need them (login, enrollment claim); no global default.
# Keys are keyed hashes of the address (backend.auth.throttle): no address in Redis or in logs.
limiter = Limiter(key_func=_address_key, default_limits=[], headers_enabled=True)
