"""Callback function (FC HTTP trigger): verify OSS's signed upload callback and record the upload.

Thin adapters over `shared.callback_app`; settings are read once, at start-up. Grant tokens are
HS256: PyJWT is imported without its asymmetric algorithms (shared/startup.py).
"""

from __future__ import annotations

import os

from shared.startup import import_pyjwt

import_pyjwt(asymmetric=False)

from shared.callback_app import MAX_BODY, create_app  # noqa: E402 - after import_pyjwt
from shared.http import event_adapter, wsgi_adapter  # noqa: E402
from shared.settings import CallbackSettings  # noqa: E402

app = create_app(CallbackSettings.from_env(os.environ), environ=os.environ)
handler = wsgi_adapter(app, function="callback", max_body=MAX_BODY)
event_handler = event_adapter(app, function="callback", max_body=MAX_BODY)
