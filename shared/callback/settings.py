"""The callback function's settings: the bucket, grant secrets, trusted key URLs, records, quotas.

With a quota set the callback may have to delete an upload that would pass it, so it then needs
the bucket's OSS settings (OSS_REGION, OSS_ENDPOINT…) as the sign function does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.settings import (
    Env,
    Limits,
    OssSettings,
    RecordsSettings,
    Secret,
    bucket_name,
    http_url,
)


@dataclass(frozen=True)
class CallbackSettings:
    bucket: str
    grant_secrets: tuple[Secret, ...]
    trusted_key_urls: tuple[str, ...]
    download_base_url: str | None
    records: RecordsSettings
    limits: Limits
    oss: OssSettings | None  # only with a quota: to delete an upload that would pass it

    @classmethod
    def from_env(cls, values: Mapping[str, str]) -> CallbackSettings:
        env = Env(values)
        bucket = bucket_name(env)
        urls = env.items("CALLBACK_TRUSTED_KEY_URLS")
        for url in urls:
            http_url("CALLBACK_TRUSTED_KEY_URLS", url)
        limits = Limits.load(env, rate=False)
        download = env.get("DOWNLOAD_BASE_URL")
        if download:
            download = http_url("DOWNLOAD_BASE_URL", download).rstrip("/")
        return cls(
            bucket=bucket,
            grant_secrets=env.secrets("GRANT_SECRET", required=True),
            trusted_key_urls=urls,
            download_base_url=download,
            records=RecordsSettings.load(env),
            limits=limits,
            oss=OssSettings.load(env) if limits.has_quota else None,
        )
