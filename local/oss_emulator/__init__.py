"""An OSS emulator for the local stack: PostObject (V1, V4, STS), policies, upload callbacks."""

from local.oss_emulator.app import KEY_PATH, EmulatorConfig, OssEmulator
from local.oss_emulator.signature import AccessKey

__all__ = ["KEY_PATH", "AccessKey", "EmulatorConfig", "OssEmulator"]
