"""OSS's multipart and single-PUT limits (next-capabilities.md §1.2), in one place.

The sign function plans uploads within them; the emulator enforces them as OSS does.
"""

from __future__ import annotations

MIN_PART_BYTES = 100 * 1024  # every part but the last, checked at CompleteMultipartUpload
MAX_PART_BYTES = 5 * 1024**3
MAX_PARTS = 10_000  # part numbers are 1..MAX_PARTS
MAX_PUT_OBJECT_BYTES = 5 * 1024**3  # PutObject, like PostObject
MAX_LIST_PARTS = 1000  # ListParts page size (max-parts), also the default
MAX_LIST_UPLOADS = 1000  # ListMultipartUploads page size (max-uploads), also the default
