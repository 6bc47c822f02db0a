"""Callback function (FC HTTP trigger): verify OSS's signed upload callback and record the upload.

Thin adapters over `shared.callback.app`; settings are read once, at start-up. Grant tokens are
HS256: PyJWT is imported without its asymmetric algorithms (shared/startup.py).
"""

from __future__ import annotations

import os

from shared.startup import import_pyjwt

import_pyjwt(asymmetric=False)

from shared.callback.app import MAX_BODY, create_app  # noqa: E402 - after import_pyjwt
from shared.callback.settings import CallbackSettings  # noqa: E402
from shared.http.fc2 import wsgi_adapter  # noqa: E402
from shared.http.fc3 import event_adapter  # noqa: E402

app = create_app(CallbackSettings.from_env(os.environ), environ=os.environ)
handler = wsgi_adapter(app, function="callback", max_body=MAX_BODY)
event_handler = event_adapter(app, function="callback", max_body=MAX_BODY)
