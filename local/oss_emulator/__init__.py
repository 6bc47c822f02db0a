"""An OSS emulator for the local stack: PostObject (V1, V4, STS), policies, upload callbacks."""

from local.oss_emulator.app import OssEmulator
from local.oss_emulator.config import EmulatorConfig
from local.oss_emulator.keys import KEY_PATH
from local.oss_emulator.signature import AccessKey

__all__ = ["KEY_PATH", "AccessKey", "EmulatorConfig", "OssEmulator"]
