"""The reconcile function's settings: the bucket (OSS_*), the key template, the allow-list and the
record store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.content import allowed_types
from shared.settings import Env, Limits, OssSettings, RecordsSettings, key_prefix_template
from shared.verify import VerifyMode, verify_mode


@dataclass(frozen=True)
class ReconcileSettings:
    """What a run reads: the bucket (OSS_*), the key template and the record store."""

    oss: OssSettings
    key_prefix: str
    records: RecordsSettings
    allowed_types: Mapping[
        str, tuple[str, ...]
    ]  # UPLOAD_ALLOWED_TYPES, judged as the callback does
    limits: Limits  # quotas: a backfilled upload is charged (or rejected) as by the callback
    verify: VerifyMode = "content"  # UPLOAD_VERIFY, as the callback verifies

    @classmethod
    def from_env(cls, values: Mapping[str, str]) -> ReconcileSettings:
        env = Env(values)
        auth_mode = env.choice("AUTH_MODE", ("jwt", "none"), "jwt")
        return cls(
            oss=OssSettings.load(env),
            key_prefix=key_prefix_template(env, auth_mode),
            records=RecordsSettings.load(env),
            allowed_types=allowed_types(env),
            limits=Limits.load(env, rate=False),
            verify=verify_mode(env),
        )
