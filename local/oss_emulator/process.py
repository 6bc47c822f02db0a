"""`x-oss-process=image/…` on GetObject: `resize` and `info`, for PNG, JPEG, GIF and WebP (Pillow).

OSS Image Processing (next-capabilities.md §5; DOC D-IMG): actions are `/`-separated, each
`name,param_value,…`. `resize`: `m_lfit` (default: fit inside w×h, keeping the aspect ratio),
`m_fixed` (exactly w×h), `w`, `h` (1…16384), `l`/`s` (longer/shorter side); an image is never
enlarged unless `limit_0`. `info`: JSON of `{"Name": {"value": "…"}}` entries (FileSize, Format,
ImageHeight, ImageWidth; FrameCount for GIF), the shape OSS answers. Anything else, or an object
that is not one of those images, is 400 as OSS answers a bad process.

Pillow is a dev dependency (requirements-dev.txt): only the emulator imports it, on first use.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

from local.oss_emulator.errors import OssError
from shared.digits import in_range

MAX_SIDE = 16_384
FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
PIL_FORMATS = {fmt: name for name, fmt in FORMATS.items()}
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
_PARAM = re.compile(r"([a-z]+)_([A-Za-z0-9]+)")


@dataclass(frozen=True)
class Processed:
    body: bytes
    content_type: str


def bad_process(message: str) -> OssError:
    return OssError(400, "InvalidArgument", message, extra=(("ArgumentName", "x-oss-process"),))


def process_image(data: bytes, spec: str) -> Processed:
    """Apply `spec` (`image/…`) to the object's bytes."""
    kind, _, chain = spec.partition("/")
    if kind != "image" or not chain:
        raise bad_process("x-oss-process must be image/<action>,…")
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - the emulator's only use

    try:
        image: Any = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise bad_process("The object is not an image Image Processing reads.") from exc
    fmt = FORMATS.get(image.format or "")
    if fmt is None:
        raise bad_process("The object is not an image Image Processing reads.")
    for action in chain.split("/"):
        name, *params = action.split(",")
        if name == "info":
            return _info(image, fmt, len(data))
        if name != "resize":
            raise bad_process(f"The operation {name!r} is not supported here.")
        image = _resize(image, _params(params))
    if fmt == "jpg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format=PIL_FORMATS[fmt])  # the source's format, as OSS keeps it
    return Processed(out.getvalue(), CONTENT_TYPES[fmt])


def _params(params: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for param in params:
        match = _PARAM.fullmatch(param)
        if match is None or match.group(1) in values:
            raise bad_process(f"The parameter {param!r} is not valid.")
        values[match.group(1)] = match.group(2)
    return values


def _side(values: dict[str, str], name: str) -> int | None:
    text = values.get(name)
    if text is None:
        return None
    value = in_range(text, 1, MAX_SIDE)
    if value is None:
        raise bad_process(f"{name} must be 1 to {MAX_SIDE}.")
    return value


def _resize(image: Any, values: dict[str, str]) -> Any:
    mode = values.get("m", "lfit")
    if mode not in ("lfit", "fixed"):
        raise bad_process(f"resize mode m_{mode} is not supported here.")
    width, height = _side(values, "w"), _side(values, "h")
    longer, shorter = _side(values, "l"), _side(values, "s")
    if width is None and height is None and longer is None and shorter is None:
        raise bad_process("resize needs w, h, l or s.")
    src_w, src_h = image.size
    if mode == "fixed":
        target = (width or src_w, height or src_h)
    else:
        ratios = []
        if width is not None:
            ratios.append(width / src_w)
        if height is not None:
            ratios.append(height / src_h)
        if longer is not None:
            ratios.append(longer / max(src_w, src_h))
        if shorter is not None:
            ratios.append(shorter / min(src_w, src_h))
        ratio = min(ratios)
        target = (max(1, round(src_w * ratio)), max(1, round(src_h * ratio)))
    if values.get("limit", "1") != "0" and (target[0] > src_w or target[1] > src_h):
        return image  # OSS does not enlarge unless limit_0
    return image.resize(target)


def _info(image: Any, fmt: str, size: int) -> Processed:
    width, height = image.size
    info = {
        "FileSize": {"value": str(size)},
        "Format": {"value": fmt},
        "ImageHeight": {"value": str(height)},
        "ImageWidth": {"value": str(width)},
    }
    if fmt == "gif":
        info["FrameCount"] = {"value": str(getattr(image, "n_frames", 1))}
    return Processed(json.dumps(info).encode(), "application/json")
