"""One way to reach the bucket with the official `oss2` SDK: the function role's credentials.

FC's python3.10 runtime ships oss2 (2.16.0), so no package vendors it; it is imported only when a
function first talks to OSS (the callback does so only to delete an upload it refused). The client
signs V4 by default (V1 when OSS_SIGNATURE_VERSION says so) and addresses OSS_ENDPOINT as the
bucket's own host (`is_cname`: the default endpoint `https://<bucket>.oss-<region>.aliyuncs.com`
is one, and so is the emulator's root). No proxy or .netrc is taken from the environment.
"""

from __future__ import annotations

from typing import Any

from shared.credentials import Credentials
from shared.settings import OssSettings


def bucket_client(settings: OssSettings, credentials: Credentials, *, timeout: float) -> Any:
    """An `oss2.Bucket` for OSS_BUCKET; `timeout` bounds the connect and each read."""
    import oss2  # noqa: PLC0415 - the runtime's own copy, loaded on first use
    from oss2.auth import ProviderAuth, ProviderAuthV4  # noqa: PLC0415
    from oss2.credentials import StaticCredentialsProvider  # noqa: PLC0415

    provider = StaticCredentialsProvider(
        credentials.access_key_id,
        credentials.access_key_secret.value,
        credentials.security_token or "",
    )
    auth: Any
    if settings.signature_version == "v4":
        auth = ProviderAuthV4(provider)
    else:
        auth = ProviderAuth(provider)
    session = oss2.Session()
    session.session.trust_env = False  # no proxy or .netrc from the environment
    return oss2.Bucket(
        auth,
        settings.endpoint,
        settings.bucket,
        is_cname=True,
        session=session,
        connect_timeout=timeout,
        region=settings.region,
    )
