"""Callback function (FC HTTP trigger): verify OSS's signed upload callback and record the upload.

Thin adapters over `shared.callback_app`; settings are read once, at start-up.
"""

from __future__ import annotations

import os

from shared.callback.app import MAX_BODY, create_app
from shared.callback.settings import CallbackSettings
from shared.http.fc2 import wsgi_adapter
from shared.http.fc3 import event_adapter

app = create_app(CallbackSettings.from_env(os.environ), environ=os.environ)
handler = wsgi_adapter(app, function="callback", max_body=MAX_BODY)
event_handler = event_adapter(app, function="callback", max_body=MAX_BODY)
