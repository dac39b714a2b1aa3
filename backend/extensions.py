"""Extensions are created here and initialised in the application factory."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from backend.context import client_address
from backend.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
# Limits are declared on the views that need them (login, enrollment claim); no global default.
limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=True)
