"""`make probe` (deploy/probe.py, deploy/experiments.py): its logic against the emulator, since
no real bucket is here; two emulators stand in for OSS and its twin."""

from __future__ import annotations

import io
from dataclasses import replace

from deploy import probe
from deploy.experiments import EXPERIMENTS, Target

BASE = Target(
    name="oss",
    post_url="",
    sdk_endpoint="",
    bucket="dev-bucket",
    region="cn-hangzhou",
    key_id="",
    secret="",
    origin="https://app.example.com",
)


def test_without_credentials_it_says_so_and_exits_0() -> None:
    out = io.StringIO()
    assert probe.main({"OSS_BUCKET": "b", "OSS_REGION": "cn-hangzhou"}, out) == 0
    assert "not run (no OSS_ACCESS_KEY_ID/SECRET" in out.getvalue()
    target, why = probe.load_target(
        {"OSS_ACCESS_KEY_ID": "id", "OSS_ACCESS_KEY_SECRET": "s", "OSS_REGION": "cn-hangzhou"}
    )
    assert (target, why) == (None, "OSS_BUCKET not set")


def test_the_real_bucket_is_addressed_by_its_own_host() -> None:
    target, _ = probe.load_target(
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s",
            "ALIBABA_CLOUD_SECURITY_TOKEN": "t",
            "OSS_BUCKET": "uploads-bucket",
            "OSS_REGION": "cn-shanghai",
        }
    )
    assert target is not None
    assert target.post_url == "https://uploads-bucket.oss-cn-shanghai.aliyuncs.com"
    assert target.sdk_endpoint == "https://oss-cn-shanghai.aliyuncs.com"
    assert (target.token, target.origin) == ("t", "https://app.example.com")


def test_twins_agree_on_every_experiment() -> None:
    out = io.StringIO()
    with probe.emulated(BASE) as real, probe.emulated(BASE) as twin:
        assert probe.run(replace(real, name="oss"), twin, out) == 0, out.getvalue()
    text = out.getvalue()
    assert f"probe: 0 difference(s) in {len(EXPERIMENTS)} experiment(s)" in text
    assert "emulator: 204" in text  # a day-old V4 date: the emulator's reading, to be settled
    assert "emulator: 400 InvalidArgument" in text
    assert "emulator: md5-of-md5s-count" in text  # multipart ETag: to be settled on OSS


def test_a_difference_is_reported_and_exits_1() -> None:
    out = io.StringIO()
    elsewhere = replace(BASE, origin="https://other.example")
    with probe.emulated(BASE) as real, probe.emulated(elsewhere) as twin:
        assert probe.run(replace(real, name="oss"), replace(twin, origin=real.origin), out) == 1
    assert "DIFFERENT cors-on-errors" in out.getvalue()
    assert "probe: 1 difference(s)" in out.getvalue()
