"""The callback function's settings: OSS, the allow-list, quotas, grant secrets, key URLs, records.

OSS_* (bucket, region, endpoint, signature version, optional access key) serve the calls the
callback makes to OSS: verifying the object (UPLOAD_VERIFY, `shared.verify`) and deleting an
upload it refused (a type off the allow-list or content that is not what it claims, or a quota it
would pass). UPLOAD_ALLOWED_TYPES is the sign function's allow-list, read by the same code
(`shared.content`), so a stored type is judged by the list that granted it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.content import allowed_types
from shared.settings import Env, Limits, OssSettings, RecordsSettings, Secret, http_url
from shared.verify import VerifyMode, verify_mode


@dataclass(frozen=True)
class CallbackSettings:
    oss: OssSettings
    allowed_types: Mapping[str, tuple[str, ...]]
    grant_secrets: tuple[Secret, ...]
    trusted_key_urls: tuple[str, ...]
    download_base_url: str | None
    records: RecordsSettings
    limits: Limits
    verify: VerifyMode = "content"

    @classmethod
    def from_env(cls, values: Mapping[str, str]) -> CallbackSettings:
        env = Env(values)
        urls = env.items("CALLBACK_TRUSTED_KEY_URLS")
        for url in urls:
            http_url("CALLBACK_TRUSTED_KEY_URLS", url)
        download = env.get("DOWNLOAD_BASE_URL")
        if download:
            download = http_url("DOWNLOAD_BASE_URL", download).rstrip("/")
        return cls(
            oss=OssSettings.load(env),
            allowed_types=allowed_types(env),
            grant_secrets=env.secrets("GRANT_SECRET", required=True),
            trusted_key_urls=urls,
            download_base_url=download,
            records=RecordsSettings.load(env),
            limits=Limits.load(env, rate=False),
            verify=verify_mode(env),
        )

    @property
    def bucket(self) -> str:
        return self.oss.bucket
