"""The targets `make bench` judges (DESIGN.md and the issue), each with why it was missed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import coldstart
from bench.report import MB, Target, above_bare, fmt_mb, fmt_us, part_us, profile_text

if TYPE_CHECKING:
    from bench import sizes
    from bench.coldstart import ColdStart
    from bench.collect import Results
    from bench.inprocess import Measured


def targets_for(
    results: Results, cold: dict[str, ColdStart | None], warm: dict[str, Measured | None]
) -> list[Target]:
    targets: list[Target] = []
    sign, sign_lean = cold.get("sign"), cold.get("sign-no-cryptography")
    sign_heavier = cold.get("sign-with-cryptography")
    heavy = ", ".join(f"{p} ≈{ms:.0f} ms" for p, ms in results.heaviest.get("sign", [])[:3])
    if sign is not None:
        above = above_bare(sign, results)
        if sign_lean is not None:  # this build ships cryptography (AUTH_JWKS_URL was set)
            variant = (
                "This sign package ships `cryptography` (built with AUTH_JWKS_URL set), which "
                "PyJWT imports at import time; without it the same cold start measured "
                f"{sign_lean.wall_ms - results.bare_ms:.0f} ms above bare Python."
            )
        elif coldstart.is_replica(results.python):
            variant = (
                "Measured in the FC runtime replica, whose `cryptography` (from "
                "aliyun-python-sdk-core) PyJWT would import eagerly; the sign entry point imports "
                "PyJWT for HMAC only (shared/startup.py) unless AUTH_JWKS_URL is set."
            )
        else:
            extra = (
                f"{sign_heavier.wall_ms - results.bare_ms:.0f} ms"
                if sign_heavier is not None
                else "not measured"
            )
            variant = (
                "This sign package ships no `cryptography` (built without AUTH_JWKS_URL), so it "
                "is blocked in the cold start as on a bare runtime; had FC's runtime a "
                f"`cryptography` of its own, PyJWT would import it: {extra} above bare Python."
            )
        targets.append(
            Target(
                "sign cold start above bare Python",
                "≤ 60 ms",
                f"{above:.0f} ms",
                above <= 60,
                f"The handler import takes {sign.import_ms:.0f} ms; the heaviest imports are "
                f"{heavy}. {variant} Closed already: PyJWT's eager `cryptography.x509` import and its JWKS "
                "client (`urllib.request`, `http.client`, `ssl`, `email`), both off the HS256 "
                "path. What remains is spread thin: PyJWT's HMAC modules (`hashlib`/OpenSSL, "
                "`typing_extensions`, `calendar`), `dataclasses` (which imports `inspect`) and "
                "our settings and record dataclasses being built; the packages already ship "
                "precompiled bytecode. A grant token checked without PyJWT would close the rest, "
                "at the price of our own JWT code.",
            )
        )
    else:
        targets.append(Target("sign cold start above bare Python", "≤ 60 ms", "—", None))
    targets.append(_callback_cold_target(results, cold))
    sign_warm = warm.get("sign")
    plain = part_us(results, "PyJWT decode HS256, plain")
    str_key = part_us(results, "PyJWT decode HS256, shared.jwt_codec")
    encode = part_us(results, "shared.grant.issue_token")
    body_tpl = part_us(results, "shared.callback.body")
    saved = (plain - str_key) if plain and str_key else 0.0
    saving = f"{saved:.0f} µs" if saved >= 2 else "nothing measurable in this run"
    targets.append(
        Target(
            "sign warm per request",
            "≤ 100 µs",
            fmt_us(sign_warm.timing.median_us) if sign_warm else "—",
            None if sign_warm is None else sign_warm.timing.median_us <= 100,
            "One grant is a chain of small costs, none of them dominant, so no single fix gets "
            "it under 100 µs. Applied already: a sign-in token is verified once and then served "
            "from a small bounded cache until its `exp` (checked against the clock on every "
            "request), PyJWT's HMAC key guard runs once per key (`shared/jwt_codec.py`; it saves "
            f"{saving} per decode against plain `jwt.decode` here), and tokens are checked with "
            "one compiled regex. Timed alone (best batch, 'Where the time goes'): a first-time "
            f"sign-in decode {fmt_us(str_key)}, the grant token {fmt_us(encode)}, "
            f"`callback_body_template` {fmt_us(body_tpl)} and the bare V4 crypto itself about "
            "20 µs; the rest is JSON for the policy, callback and answer, two object ids, query "
            "parsing, CORS and the access log line."
            + profile_text(results, "sign")
            + " What would close it: trimming the JSON work (the callback JSON and the answer "
            "are two more `json.dumps` after the policy) and a grant token cheaper than a JWT "
            "(itsdangerous-style, no JSON header); both trade clarity for microseconds that a "
            "function billed per 1 ms does not charge for.",
        )
    )
    cb = warm.get("callback-memory")
    deadline = part_us(results, "shared.deadline")
    verify_tok = part_us(results, "shared.grant.verify_token")
    parse = part_us(results, "shared.callback.parse_callback_body")
    bare = warm.get("bare-rsa-test")
    targets.append(
        Target(
            "callback warm per request, store excluded",
            "≤ 300 µs",
            fmt_us(cb.timing.median_us) if cb else "—",
            None if cb is None else cb.timing.median_us <= 300,
            "Timed alone (best batch): the grant token check (`verify_token`, a PyJWT HS256 "
            f"decode) {fmt_us(verify_tok)}; the hand-off of the record write to a deadline "
            f"worker thread {fmt_us(deadline)} with a no-op (a queue put, a thread switch and "
            f"an Event wait, on a loaded 2-core machine); the body parse {fmt_us(parse)}; the "
            f"RSA verify {fmt_us(bare.timing.median_us if bare else None)} with our 2048-bit key "
            "(OSS's real key is 512-bit and about half that)."
            + profile_text(results, "callback")
            + " What would close it: the deadline hand-off is kept on purpose (it is what "
            "guarantees a 503 well inside OSS's 5 s when the store hangs); skipping it for a "
            "store that cannot hang, or handing off to a worker that is already spinning, would "
            "take most of the gap."
            + (
                " The figure is within noise of the target on this machine; an idle run is "
                "the fair judge."
                if cb is not None and cb.timing.median_us <= 360
                else ""
            ),
        )
    )
    for function, limit in (("sign", 1.0), ("callback", 15.0)):
        size = results.sizes.get(function)
        zipped = size.zipped if size is not None else None
        note = "excluding runtime-provided SDKs" if function == "callback" else ""
        targets.append(
            Target(
                f"{function} package zipped {note}".strip(),
                f"≤ {limit:g} MB",
                fmt_mb(zipped) if zipped is not None else "not built",
                None if zipped is None else zipped <= limit * MB,
                _size_why(size, limit),
            )
        )
    for function, name in (("sign", "sign"), ("callback", "callback")):
        run = cold.get(name)
        rss = run.maxrss_kb * 1024 if run else None
        targets.append(
            Target(
                f"{function} peak RSS (no Tablestore SDK)",
                "≤ 64 MB",
                fmt_mb(rss),
                None if rss is None else rss <= 64 * MB,
                "The peak is the interpreter plus the imported libraries; the largest share "
                "comes from `cryptography`'s Rust extension and OpenSSL. Lazy imports of "
                "`requests` (only for non-pinned key fetches) and of PyJWT's asymmetric support "
                "would lower it.",
            )
        )
    urls = part_us(results, "shared.sign.downloads")
    targets.append(
        Target(
            "download URLs for a page of 50 records (warm)",
            "≤ 2 ms",
            fmt_us(urls),
            None if urls is None else urls <= 2000,
            "100 V4 presigned GETs (`url`, `thumbnailUrl`): what the 50 URLs of one moment share "
            "(encoded `x-oss-*` parameters, the derived key) is made once per page "
            "(`V4Presigner`), ASCII is encoded by one `str.translate`; each URL still costs a "
            "SHA-256 and an HMAC over its canonical request.",
        )
    )
    return targets


def _callback_cold_target(results: Results, cold: dict[str, ColdStart | None]) -> Target:
    pinned, fetched = cold.get("callback-pinned"), cold.get("callback")
    if pinned is None:
        return Target("callback cold start above bare Python", "≤ 150 ms", "—", None)
    above = above_bare(pinned, results)
    fetch = f"{above_bare(fetched, results):.0f} ms" if fetched is not None else "not measured"
    return Target(
        "callback cold start above bare Python (OSS's pinned key)",
        "≤ 150 ms",
        f"{above:.0f} ms",
        above <= 150,
        "OSS's callbacks name OSS's key, which the callback pins: no fetch, no `requests`. "
        f"Import {pinned.import_ms:.0f} ms. Closed: PyJWT's `cryptography.x509` and JWKS client "
        "(grant tokens are HS256), and `requests`, now imported by the first key fetch only. "
        f"A callback naming another trusted key URL fetches it once per instance: {fetch} "
        "above bare here, most of it `requests` (which loads its CA bundle at import) and the "
        "fetch. The Tablestore SDK's import is reported apart (below).",
    )


def _size_why(size: sizes.PackageSize | None, limit: float) -> str:
    if size is None:
        return ""
    largest = ", ".join(f"{n} {b / MB:.1f} MB" for n, b in size.largest[:4])
    text = f"The largest entries (unzipped) are {largest}."
    if size.largest and size.largest[0][0] == "cryptography":
        text += (
            " `cryptography` (its Rust/OpenSSL extension) is nearly all of it. The sign function "
            "needs it only for AUTH_JWKS_URL (RS256/ES256): PyJWT verifies HS256 with the "
            "standard library. To close it: build the sign package without `cryptography` when "
            "JWKS is not configured (the build adds it through its jwt → cryptography implied "
            "import), or offer two package variants; this also cuts the sign cold start (see "
            "above)."
        )
    else:
        text += f" Vendor only what the function imports to bring it under {limit:g} MB."
    return text
