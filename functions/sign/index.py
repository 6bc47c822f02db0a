"""Sign function (FC HTTP trigger): authenticate the caller, issue upload grants, list uploads.

Thin adapters over `shared.sign_app`; settings are read once, at start-up.
"""

from __future__ import annotations

import os

from shared.http.fc2 import wsgi_adapter
from shared.http.fc3 import event_adapter
from shared.sign.app import MAX_BODY, create_app
from shared.sign.settings import SignSettings

app = create_app(SignSettings.from_env(os.environ), environ=os.environ)
handler = wsgi_adapter(app, function="sign", max_body=MAX_BODY)
event_handler = event_adapter(app, function="sign", max_body=MAX_BODY)
