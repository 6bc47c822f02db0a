"""What an emulated bucket is: name, region, keys (and their RAM policies), ACL, CORS, versioning."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local.oss_emulator.cors import DEPLOYED as DEPLOYED_CORS
from local.oss_emulator.keys import KEY_PATH
from local.oss_emulator.policy import MAX_OBJECT_BYTES
from local.oss_emulator.ram import RamPolicy
from local.oss_emulator.signature import AccessKey


@dataclass(frozen=True)
class EmulatorConfig:
    bucket: str
    region: str
    access_keys: tuple[AccessKey, ...]
    data_dir: Path
    public_url: str  # how clients reach the emulator, e.g. http://127.0.0.1:9000
    cors_origins: frozenset[str] = frozenset()  # replace the origins of the deployed CORS rules
    cors_file: Path = DEPLOYED_CORS  # the PutBucketCors document the bucket gets
    versioning: str = ""  # "", "Enabled" or "Suspended": x-oss-forbid-overwrite is ignored once set
    bucket_acl: str = "public-read"  # unsigned reads work unless an object's own ACL says private
    owner_id: str = "1000000000000000"  # bucket owner UID, sent as x-oss-owner/x-oss-requester
    strict_v4_policy: bool = True  # V4 policies must pin signature version, credential and date
    max_object_bytes: int = MAX_OBJECT_BYTES
    # access key id → the RAM policy bound to it; a key without one is the bucket owner's
    policies: Mapping[str, RamPolicy] = field(default_factory=dict)

    @property
    def key_url(self) -> str:
        """The URL OSS names in x-oss-pub-key-url; the callback function is told to trust it."""
        return self.public_url.rstrip("/") + KEY_PATH
