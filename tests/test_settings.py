"""Settings are parsed once from a mapping (`sign_env`, never os.environ); every missing or
malformed value names its variable."""

from __future__ import annotations

import dataclasses

import pytest

from shared.callback.settings import CallbackSettings
from shared.content import is_active_type
from shared.errors import ConfigError
from shared.reconcile.settings import ReconcileSettings
from shared.sign.settings import SignSettings
from tests.support.sign import ACCESS_KEY_SECRET, GRANT_SECRET, JWT_SECRET, sign_env, sign_settings

SHORT = "too-short-secret"
SECOND_SECRET = "second-grant-secret-0123456789abcdef"
REQUIRED = ("OSS_BUCKET", "OSS_REGION", "CALLBACK_URL", "GRANT_SECRET", "AUTH_JWT_SECRET")


def bad(name: str, *values: str | None) -> list[tuple[dict[str, str | None], str]]:
    """Rows of the table below: each value of `name` alone is refused, naming `name`."""
    return [({name: value}, name) for value in values]


KEY_PREFIX_TEMPLATE_SHAPES = ["uploads/", "/uploads/{user}/", "uploads/{user}", "uploads//{user}/"]
KEY_PREFIX_TRICKS = ["../{user}/", "u-{user}/", "{user}/{user}/", "", "uploads/../{user}/"]
KEY_PREFIX_SPELLINGS = ["uploads/{user}/{user}/", "uploads/u-{user}/", "uploads/%7Buser%7D/"]
KEY_PREFIX_CHARACTERS = ["uploads\\{user}/", "uploads/{user}/名字/"]
THUMBNAIL_OPERATIONS = ["video/snapshot,t_0", "image/", "image/info", "image/watermark,text_aGk"]
THUMBNAIL_SPELLINGS = ["image/resize,w_256&x=1", "image/resize,w 256", "image/resize,,w_1"]


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        *(({name: None}, name) for name in REQUIRED),
        *(({name: "  "}, name) for name in ("OSS_BUCKET", "CALLBACK_URL", "GRANT_SECRET")),
        *bad("OSS_BUCKET", "Bad_Bucket", "ab"),
        *bad("OSS_REGION", "hangzhou", "cn hangzhou"),
        *bad("OSS_ENDPOINT", "ftp://oss.example.com", "oss.example.com"),
        *bad("OSS_ENDPOINT", "https://user:pw@oss.example.com", "https://oss.example.com:99999"),
        *bad("OSS_SIGNATURE_VERSION", "v2"),
        *bad("OSS_ACCESS_KEY_SECRET", None),
        *bad("OSS_ACCESS_KEY_ID", None),
        *bad("CALLBACK_URL", "https://api.example.com/cb?x=1", "https://api.example.com/cb?"),
        *bad("CALLBACK_URL", "https://api.example.com/cb#frag", "/oss-callback"),
        *bad("CALLBACK_URL", "https://a.example.com/cb;https://b.example.com/cb"),
        *bad("CALLBACK_URL", "https://api.example.com/a+b", "https://api.example.com/ cb"),
        *bad("UPLOAD_KEY_PREFIX", *KEY_PREFIX_TEMPLATE_SHAPES, *KEY_PREFIX_TRICKS),
        *bad("UPLOAD_KEY_PREFIX", *KEY_PREFIX_SPELLINGS, *KEY_PREFIX_CHARACTERS),
        *bad("UPLOAD_MAX_BYTES", "abc", "0", "-5", str(10_000 * 5 * 1024**3 + 1)),  # > 48.8 TB
        *bad("MULTIPART_PART_BYTES", str(100 * 1024 - 1), str(5 * 1024**3 + 1), "8MiB"),
        *bad("POLICY_TTL_SECONDS", "0", "86401", "5m"),
        *bad("UPLOAD_ALLOWED_TYPES", "png", "png=image png"),
        *bad("GRANT_SECRET", SHORT, f"{GRANT_SECRET},{SHORT}"),
        *bad("AUTH_MODE", "maybe"),
        *bad("AUTH_JWT_SECRET", SHORT),
        *bad("AUTH_JWKS_URL", "https://id.example.com/jwks"),  # beside AUTH_JWT_SECRET
        ({"AUTH_JWT_SECRET": None, "AUTH_JWKS_URL": "file:///etc/jwks"}, "AUTH_JWKS_URL"),
        *bad("CORS_ALLOWED_ORIGINS", "*", "https://app.example.com/", "app.example.com"),
        *bad("RECORDS_BACKEND", "mysql"),
        ({"RECORDS_BACKEND": "tablestore"}, "TABLESTORE_ENDPOINT"),
        (
            {"RECORDS_BACKEND": "tablestore", "TABLESTORE_ENDPOINT": "https://i.ots.aliyuncs.com"},
            "TABLESTORE_INSTANCE",
        ),
        *bad("TABLESTORE_TABLE", "bad-name"),
        *bad("DOWNLOAD_MODE", "private"),
        ({"DOWNLOAD_MODE": "public", "DOWNLOAD_BASE_URL": "ftp://files"}, "DOWNLOAD_BASE_URL"),
        *bad("DOWNLOAD_URL_TTL_SECONDS", "0", "604801", "5m"),
        *bad("IMAGE_THUMBNAIL_PROCESS", *THUMBNAIL_OPERATIONS, *THUMBNAIL_SPELLINGS),
        *bad("IMAGE_THUMBNAIL_PROCESS", "image/resize,w_1/", "image/resize,w_" + "1" * 300),
    ],
)
def test_missing_or_malformed_variable_is_named(
    overrides: dict[str, str | None], name: str
) -> None:
    with pytest.raises(ConfigError) as info:
        SignSettings.from_env(sign_env(**overrides))
    assert info.value.variable == name
    assert name in str(info.value)


def test_defaults() -> None:
    settings = sign_settings(UPLOAD_MAX_BYTES=None, CORS_ALLOWED_ORIGINS=None)
    assert settings.oss.endpoint == "https://example-bucket.oss-cn-hangzhou.aliyuncs.com"
    assert settings.oss.signature_version == "v4"
    assert settings.upload.key_prefix == "uploads/{user}/"
    assert settings.upload.policy_ttl_seconds == 300
    assert settings.upload.max_bytes == 20 * 1024 * 1024
    assert settings.upload.part_bytes == 8 * 1024 * 1024
    assert sign_settings(MULTIPART_PART_BYTES=str(100 * 1024)).upload.part_bytes == 100 * 1024
    assert settings.auth.mode == "jwt"
    assert settings.cors_origins == frozenset()
    assert settings.records.backend == "sqlite"
    downloads = settings.downloads
    assert (downloads.mode, downloads.ttl_seconds) == ("signed", 300)
    assert downloads.thumbnail_process == "image/resize,m_lfit,w_256,h_256"
    public = sign_settings(DOWNLOAD_MODE="public", DOWNLOAD_BASE_URL="https://files.example.com/")
    assert public.downloads.base_url == "https://files.example.com"
    # the default allow-list, type by type: test_contracts.py::test_default_allow_list


def test_accepted_values_are_normalised() -> None:
    settings = sign_settings(
        OSS_REGION="OSS-cn-shanghai",
        OSS_ENDPOINT="http://127.0.0.1:9000/",
        OSS_SIGNATURE_VERSION="V1",
        CORS_ALLOWED_ORIGINS=" https://a.example.com , http://localhost:8000 ",
        GRANT_SECRET=f"{GRANT_SECRET}, {SECOND_SECRET}",
    )
    assert [s.value for s in settings.grant_secrets] == [GRANT_SECRET, SECOND_SECRET]  # in order
    assert settings.oss.region == "cn-shanghai"
    assert settings.oss.endpoint == "http://127.0.0.1:9000"
    assert settings.oss.signature_version == "v1"
    assert settings.cors_origins == {"https://a.example.com", "http://localhost:8000"}
    jwks = "https://id.example.com/keys?tenant=t1"  # a JWKS URL may carry a query
    settings = sign_settings(AUTH_JWT_SECRET=None, AUTH_JWKS_URL=jwks)
    assert (settings.auth.jwks_url, settings.auth.jwt_secret) == (jwks, None)
    # an empty prefix (legacy clients), or one without {user}, only with AUTH_MODE=none
    settings = sign_settings(AUTH_MODE="none", AUTH_JWT_SECRET=None, UPLOAD_KEY_PREFIX="")
    assert (settings.upload.key_prefix, settings.auth.mode) == ("", "none")
    fixed = sign_settings(AUTH_MODE="none", UPLOAD_KEY_PREFIX="public/")
    assert fixed.upload.key_prefix == "public/"


def test_active_content_is_dropped_from_the_allow_list() -> None:
    """One notion of active content (is_active_type); Office documents (…openxmlformats…) are
    downloads, not documents: allowed by both."""
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    types = sign_settings(
        UPLOAD_ALLOWED_TYPES="png=image/png,svg=image/svg+xml,txt=text/html,.JPG=Image/JPEG,"
        f"docx={docx},xml=application/xml,x=text/xml"
    ).upload.allowed_types
    assert dict(types) == {"png": ("image/png",), "jpg": ("image/jpeg",), "docx": (docx,)}
    only_active = sign_settings(UPLOAD_ALLOWED_TYPES="svg=image/svg+xml,html=text/html")
    assert dict(only_active.upload.allowed_types) == {}  # every filename is then a 400
    assert not is_active_type(docx)
    for active in ("application/xml", "image/svg+xml", "text/xml", "TEXT/HTML; charset=utf-8"):
        assert is_active_type(active)


def test_secrets_are_masked_in_repr() -> None:
    settings = sign_settings()
    text = repr(settings) + str(settings)
    for secret in (ACCESS_KEY_SECRET, GRANT_SECRET, JWT_SECRET):
        assert secret not in text
    assert "**********" in text
    assert settings.oss.access_key_secret is not None
    assert settings.oss.access_key_secret.value == ACCESS_KEY_SECRET
    with pytest.raises(ConfigError) as info:  # nor does an error about a secret
        sign_settings(AUTH_JWT_SECRET=SHORT)
    assert SHORT not in str(info.value)


def test_settings_are_frozen() -> None:
    settings = sign_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.oss.bucket = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.upload.allowed_types["exe"] = ("application/x-msdownload",)  # type: ignore[index]


VALID_BUCKETS = ["my--bucket", "a-b", "a" * 63]
INVALID_BUCKETS = ["-ab", "ab-", "a" * 64, "ab"]


@pytest.mark.parametrize(
    ("bucket", "valid"),
    [*((name, True) for name in VALID_BUCKETS), *((name, False) for name in INVALID_BUCKETS)],
)
def test_every_function_reads_oss_bucket_by_one_rule(bucket: str, valid: bool) -> None:
    """OSS's naming rules (3–63 of a-z, 0-9, '-'; letter or digit at each end; '--' allowed):
    the sign, callback and reconcile functions agree on every name."""
    env = sign_env(OSS_BUCKET=bucket)
    loaders = (SignSettings.from_env, CallbackSettings.from_env, ReconcileSettings.from_env)
    for load in loaders:
        if valid:
            load(env)
        else:
            with pytest.raises(ConfigError) as info:
                load(env)
            assert info.value.variable == "OSS_BUCKET"


def test_callback_settings_need_no_auth_variables() -> None:
    env = sign_env(AUTH_JWT_SECRET=None, CALLBACK_URL=None)
    settings = CallbackSettings.from_env(env)
    assert settings.bucket == "example-bucket"
    assert settings.allowed_types["png"] == ("image/png",)  # it judges stored types
    for name, value in (  # it deletes refused uploads: the OSS_* it needs
        ("OSS_REGION", None),
        ("OSS_BUCKET", None),
        ("CALLBACK_TRUSTED_KEY_URLS", "gopher://x/k.pem"),
    ):
        with pytest.raises(ConfigError) as info:
            CallbackSettings.from_env(sign_env(**{name: value}))
        assert info.value.variable == name
