"""Sign function (FC HTTP trigger): authenticate the caller, issue upload grants, list uploads.

Thin adapters over `shared.sign_app`; settings are read once, at start-up.
"""

from __future__ import annotations

import os

from shared.http import event_adapter, wsgi_adapter
from shared.settings import SignSettings
from shared.sign_app import MAX_BODY, create_app

app = create_app(SignSettings.from_env(os.environ), environ=os.environ)
handler = wsgi_adapter(app, function="sign", max_body=MAX_BODY)
event_handler = event_adapter(app, function="sign", max_body=MAX_BODY)
