"""Callback function (FC HTTP trigger): verify OSS's signed upload callback and record the upload.

Thin adapters over `shared.callback_app`; settings are read once, at start-up.
"""

from __future__ import annotations

import os

from shared.callback_app import MAX_BODY, create_app
from shared.http import event_adapter, wsgi_adapter
from shared.settings import CallbackSettings

app = create_app(CallbackSettings.from_env(os.environ), environ=os.environ)
handler = wsgi_adapter(app, function="callback", max_body=MAX_BODY)
event_handler = event_adapter(app, function="callback", max_body=MAX_BODY)
