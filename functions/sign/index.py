"""Sign function (FC HTTP trigger): authenticate the caller, issue upload grants, list uploads.

Thin adapters over `shared.sign.app`; settings are read once, at start-up. PyJWT is imported
before the app, with asymmetric algorithms only for AUTH_JWKS_URL (shared/startup.py).
"""

from __future__ import annotations

import os

from shared.sign.settings import SignSettings
from shared.startup import import_pyjwt

settings = SignSettings.from_env(os.environ)
import_pyjwt(asymmetric=settings.auth.jwks_url is not None)

from shared.http.fc2 import wsgi_adapter  # noqa: E402 - after import_pyjwt
from shared.http.fc3 import event_adapter  # noqa: E402
from shared.sign.app import MAX_BODY, create_app  # noqa: E402

app = create_app(settings, environ=os.environ)
handler = wsgi_adapter(app, function="sign", max_body=MAX_BODY)
event_handler = event_adapter(app, function="sign", max_body=MAX_BODY)
