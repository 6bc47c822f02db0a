// oss-upload.js — browser uploads straight to Alibaba Cloud OSS with a grant from our sign
// function. An ES module with no dependencies; types in oss-upload.d.ts.
//
//   const uploader = createUploader({ signatureUrl: '/signature', getToken: () => token });
//   const record = await uploader.upload(file, { path: 'avatars', onProgress, signal });
//
// The flow (DESIGN.md): GET /signature → POST the form (key, fields…, file) to the grant's
// host → OSS calls our callback → OSS hands its JSON answer back to us: that is the record.
// Files above `multipartThreshold` (and always above PostObject's 5 GB) go in parts through
// the sign function's /multipart endpoints instead, and resume after a reload (see
// "multipart uploads" below).

import { Crc64, combine as combineCrc64 } from './crc64.js';

/** Default number of uploads that run at once. */
export const DEFAULT_CONCURRENCY = 3;
/** A cached prefix grant is dropped this long before its expiry (or at half its lifetime). */
export const GRANT_MARGIN_MS = 30_000;

// --- errors: one class per thing that can go wrong, each with a stable `kind` ----------------

/** Base class of every error `upload()` rejects with. */
export class UploadError extends Error {
  constructor(kind, message, details = {}) {
    super(message);
    this.name = 'UploadError';
    /** 'grant' | 'quota' | 'rate-limited' | 'rejected' | 'refused' | 'not-recorded' | 'network' |
     *  'aborted' | 'api' | 'part-failed' | 'integrity' | 'file' */
    this.kind = kind;
    Object.assign(this, details);
  }
}

/** The sign function refused or failed to issue a grant (HTTP status + our JSON error code). */
export class GrantError extends UploadError {
  constructor(status, code, message) {
    super('grant', `Upload permission refused (${status} ${code}): ${message}`, { status, code });
    this.name = 'GrantError';
    this.serverMessage = message;
  }
}

/**
 * The caller's storage quota has no room: the sign function refused the grant (403), or the
 * callback rejected the stored file (which the server then deleted). `stage` says which.
 */
export class QuotaExceededError extends UploadError {
  constructor(stage, status, message) {
    super('quota', `Storage quota exceeded: ${message}`, { stage, status, code: 'QuotaExceeded' });
    this.name = 'QuotaExceededError';
    this.serverMessage = message;
  }
}

/** Too many grants asked for in a minute (429): `retryAfter` seconds, `retryAt` (ms). */
export class TooManyRequestsError extends UploadError {
  constructor(retryAfter, message, now) {
    const seconds = Math.max(1, Math.ceil(retryAfter));
    super('rate-limited', `Too many uploads at once; try again in ${seconds} s`, {
      status: 429,
      code: 'TooManyRequests',
      retryAfter: seconds,
      retryAt: now + seconds * 1000,
    });
    this.name = 'TooManyRequestsError';
    this.serverMessage = message;
  }
}

/** The callback refused a stored file for another reason (its answer `code`); not recorded. */
export class UploadRefusedError extends UploadError {
  constructor(code, message, key) {
    super('refused', `Upload refused (${code}): ${message}`, { status: 200, code, key });
    this.name = 'UploadRefusedError';
    this.serverMessage = message;
  }
}

/** OSS refused the upload (an OSS XML error: Code + Message); nothing was stored. */
export class UploadRejectedError extends UploadError {
  constructor(status, code, message, requestId) {
    super('rejected', `Upload rejected by storage (${code}): ${message}`, {
      status,
      code,
      requestId,
    });
    this.name = 'UploadRejectedError';
    this.serverMessage = message;
  }
}

/** OSS stored the object but our callback did not record it (203 CallbackFailed). */
export class NotRecordedError extends UploadError {
  constructor(status, code, message, key, requestId) {
    super('not-recorded', `File stored but not recorded (${code}): ${message}`, {
      status,
      code,
      key,
      requestId,
    });
    this.name = 'NotRecordedError';
    this.serverMessage = message;
  }
}

/** The request never got an HTTP answer (offline, DNS, CORS, connection reset). */
export class NetworkError extends UploadError {
  constructor(stage) {
    const what = { grant: 'the upload permission', api: 'the request' }[stage] || 'the file';
    super('network', `Network failure while sending ${what}; check the connection and retry`, {
      stage,
    });
    this.name = 'NetworkError';
  }
}

/** The caller aborted through its AbortSignal. `name` is 'AbortError' as for fetch(). */
export class UploadAbortedError extends UploadError {
  constructor() {
    super('aborted', 'Upload cancelled');
    this.name = 'AbortError';
  }
}

/** GET or DELETE /uploads/{key} answered with an error (HTTP status + our JSON error code). */
export class ApiError extends UploadError {
  constructor(status, code, serverMessage) {
    super('api', `${code}: ${serverMessage}`, { status, code, serverMessage });
    this.name = 'ApiError';
  }
}

/**
 * A part of a multipart upload failed on every attempt (`attempts`, the last answer's `status`
 * and `code`; status 0 = no answer). The upload stays open: choosing the same file again resumes.
 */
export class PartUploadError extends UploadError {
  constructor(partNumber, attempts, status, code, message, uploadId, key) {
    const last = status ? `${status} ${code}` : code;
    super(
      'part-failed',
      `Part ${partNumber} failed ${attempts} time${attempts === 1 ? '' : 's'} (last: ${last}); ` +
        'choose the same file again to resume',
      { partNumber, attempts, status, code, uploadId, key },
    );
    this.name = 'PartUploadError';
    this.serverMessage = message;
  }
}

/**
 * The stored object's CRC-64 is not the file's: `expected` (ours), `actual` (OSS's). The object
 * was stored and recorded (`record`); the caller decides (e.g. deleteUpload and try again).
 */
export class IntegrityError extends UploadError {
  constructor(expected, actual, record) {
    const text = `The stored object differs from the file (CRC-64 ${actual}, expected ${expected})`;
    super('integrity', text, {
      expected,
      actual,
      key: record.key,
      record,
    });
    this.name = 'IntegrityError';
  }
}

/** The file could not be read (moved, deleted or changed since it was chosen). */
export class FileReadError extends UploadError {
  constructor(cause) {
    super('file', `The file could not be read: ${(cause && cause.message) || cause}`);
    this.name = 'FileReadError';
  }
}

/** Download URLs are refreshed this long before they expire (a page may hold them a while). */
export const URL_MARGIN_MS = 30_000;

// --- the uploader ----------------------------------------------------------------------------

/**
 * Create an uploader bound to one sign function.
 * @param {import('./oss-upload').UploaderOptions} options
 * @returns {import('./oss-upload').Uploader}
 */
export function createUploader(options) {
  const {
    signatureUrl,
    uploadsUrl,
    getToken = () => null,
    exactKeys = false,
    concurrency = DEFAULT_CONCURRENCY,
    now = () => Date.now(),
    quotaUrl = null,
    multipartThreshold = MULTIPART_THRESHOLD,
  } = options || {};
  if (!signatureUrl) throw new TypeError('createUploader: signatureUrl is required');
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TypeError('createUploader: concurrency must be an integer ≥ 1');
  }
  if (!(multipartThreshold >= 0)) {
    throw new TypeError('createUploader: multipartThreshold must be a number ≥ 0');
  }
  const limit = createLimiter(concurrency);
  const multipart = createMultipart({ ...options, getToken, now });
  const prefixGrants = new Map(); // path → { promise, validUntil }

  /** One GET /signature; every failure becomes a GrantError, NetworkError or abort. */
  async function requestGrant(params, signal) {
    const url = new URL(signatureUrl, globalThis.location ? globalThis.location.href : undefined);
    url.searchParams.set('path', params.path || '');
    for (const name of ['filename', 'size', 'type']) {
      const value = params[name];
      if (value !== undefined && value !== null && value !== '') {
        url.searchParams.set(name, String(value));
      }
    }
    const headers = { Accept: 'application/json' };
    const token = await getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    throwIfAborted(signal);
    let response;
    let text;
    try {
      response = await fetch(url, { headers, signal, credentials: 'same-origin' });
      text = await response.text();
    } catch {
      if (signal && signal.aborted) throw new UploadAbortedError();
      throw new NetworkError('grant');
    }
    const body = parseJson(text);
    if (!response.ok) throw signFailure(response, body, now());
    return checkGrant(body, response.status);
  }

  /**
   * Prefix grants are shared per path until shortly before they expire, as the legacy client
   * caches them; one request per path at a time, never cancelled by one caller's signal.
   */
  function prefixGrant(path, signal) {
    const cacheKey = path.replace(/\/$/, '');
    let entry = prefixGrants.get(cacheKey);
    if (!entry || (entry.grant && now() >= entry.validUntil)) {
      const fresh = { promise: null, grant: null, validUntil: 0 };
      fresh.promise = requestGrant({ path }).then(
        (grant) => {
          const expiresAt = grant.expire * 1000;
          const lifetime = expiresAt - now();
          fresh.validUntil = expiresAt - Math.min(GRANT_MARGIN_MS, Math.max(0, lifetime / 2));
          fresh.grant = grant;
          return grant;
        },
        (error) => {
          if (prefixGrants.get(cacheKey) === fresh) prefixGrants.delete(cacheKey);
          throw error;
        },
      );
      prefixGrants.set(cacheKey, fresh);
      entry = fresh;
    }
    return withSignal(entry.promise, signal);
  }

  /** Drop a cached grant OSS called expired (unless another upload already replaced it). */
  function forgetPrefixGrant(path, grant) {
    const cacheKey = path.replace(/\/$/, '');
    const entry = prefixGrants.get(cacheKey);
    if (entry && entry.grant === grant) prefixGrants.delete(cacheKey);
  }

  async function grantFor(file, filename, path, signal) {
    if (exactKeys) {
      return requestGrant({ path, filename, size: file.size, type: file.type }, signal);
    }
    return prefixGrant(path, signal);
  }

  /** Grant → form POST; on "Policy expired" refresh the grant once and post again. */
  async function uploadOne(file, opts) {
    const { path = '', onProgress, signal } = opts;
    const filename = opts.filename || file.name || 'blob';
    throwIfAborted(signal);
    const inParts = opts.multipart ?? usesMultipart(file.size, multipartThreshold);
    if (inParts) return multipart.upload(file, { ...opts, path, filename });
    let grant = await grantFor(file, filename, path, signal);
    try {
      return await postObject(grant, file, filename, onProgress, signal);
    } catch (error) {
      if (!isPolicyExpired(error)) throw error;
      if (!exactKeys) forgetPrefixGrant(path, grant);
      grant = await grantFor(file, filename, path, signal);
      return postObject(grant, file, filename, onProgress, signal);
    }
  }

  /** GET /quota beside /signature (or `quotaUrl`): bytes and files used, reserved, limit. */
  async function quota(opts = {}) {
    const base = globalThis.location ? globalThis.location.href : undefined;
    const url = quotaUrl
      ? new URL(quotaUrl, base)
      : new URL(String(signatureUrl).replace(/signature(?=$|[?#])/, 'quota'), base);
    url.search = '';
    const headers = { Accept: 'application/json' };
    const token = await getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    let text;
    try {
      response = await fetch(url, { headers, signal: opts.signal, credentials: 'same-origin' });
      text = await response.text();
    } catch {
      if (opts.signal && opts.signal.aborted) throw new UploadAbortedError();
      throw new NetworkError('grant');
    }
    const body = parseJson(text);
    if (!response.ok || !body || !body.bytes || !body.files) {
      throw new GrantError(
        response.status,
        (body && body.code) || `HTTP${response.status}`,
        (body && body.message) || 'no quota in the answer',
      );
    }
    return body;
  }

  /** GET or DELETE one upload of the caller's: /uploads/{key}, each segment percent-encoded. */
  async function uploadRequest(method, key, signal) {
    const base = new URL(signatureUrl, globalThis.location ? globalThis.location.href : undefined);
    const list = uploadsUrl ? new URL(uploadsUrl, base) : new URL('uploads', base);
    const path = String(key).split('/').map(encodeURIComponent).join('/');
    const url = new URL(`${list.pathname.replace(/\/$/, '')}/${path}`, list);
    const headers = { Accept: 'application/json' };
    const token = await getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    throwIfAborted(signal);
    let response;
    let text;
    try {
      response = await fetch(url, { method, headers, signal, credentials: 'same-origin' });
      text = await response.text();
    } catch {
      if (signal && signal.aborted) throw new UploadAbortedError();
      throw new NetworkError('api');
    }
    const body = parseJson(text);
    if (!response.ok) {
      throw new ApiError(
        response.status,
        (body && body.code) || `HTTP${response.status}`,
        (body && body.message) || response.statusText || 'no details',
      );
    }
    return body;
  }

  return {
    quota,
    /** The caller's record for `key`, with fresh download URLs. */
    getUpload(key, opts = {}) {
      return uploadRequest('GET', key, opts.signal);
    },
    /** Delete the caller's upload (the object, then its record); resolves when it is gone. */
    async deleteUpload(key, opts = {}) {
      await uploadRequest('DELETE', key, opts.signal);
    },
    /** `record` itself while its URLs last longer than `margin` ms, else it again with new ones. */
    async fresh(record, opts = {}) {
      const margin = opts.margin ?? URL_MARGIN_MS;
      const ends = [record.url, record.thumbnailUrl].map(urlExpiresAt).filter((t) => t !== null);
      if (ends.every((end) => end - now() > margin)) return record;
      return uploadRequest('GET', record.key, opts.signal);
    },
    upload(file, opts = {}) {
      if (!(file instanceof Blob)) {
        return Promise.reject(new TypeError('upload: file must be a File or Blob'));
      }
      return limit(() => uploadOne(file, opts), opts.signal);
    },
    /** The prefix grant for a folder (cached); e.g. to learn the upload host. */
    grant(path = '', opts = {}) {
      return prefixGrant(path, opts.signal);
    },
  };
}

// --- multipart uploads (DESIGN.md "Multipart uploads") ---------------------------------------
//
// POST /multipart → {uploadId, key, partSize, partCount, expire}; part URLs signed in batches
// just before they are needed (POST /multipart/{id}/parts), each part PUT straight to OSS from
// `file.slice()` with a few in flight and retried with backoff; POST /multipart/{id}/complete
// returns the callback's record. {uploadId, key, partSize…} is kept in localStorage under a
// fingerprint of the file, the user and the endpoint: choosing the same file again asks the
// server which parts OSS has (GET /multipart/{id}) and sends only the others.
//
// Integrity: the CRC-64 of each part is computed while it is sent and compared with OSS's
// `x-oss-hash-crc64ecma` for that part (a mismatch is retried like a failed PUT); the parts'
// CRCs combine into the file's, compared with the record's `crc64` after Complete. No
// Content-MD5: WebCrypto has no MD5, and the CRC check catches the same corruption without one.

/** Files larger than this go multipart by default (bytes). */
export const MULTIPART_THRESHOLD = 100 * 1024 * 1024;
/** PostObject's limit: larger files always go multipart. */
export const POST_OBJECT_MAX_BYTES = 5 * 1024 * 1024 * 1024;
/** Parts in flight at once, by default. */
export const DEFAULT_PART_CONCURRENCY = 4;
/** Retries of one part after its first failure, by default. */
export const DEFAULT_PART_RETRIES = 5;
/** Part URLs asked for in one request (the sign function takes at most 100). */
export const PART_URL_BATCH = 16;
/** Prefix of the localStorage entries that let an upload resume. */
export const RESUME_KEY_PREFIX = 'oss-upload.multipart.';
const READ_CHUNK = 4 * 1024 * 1024;

/** Whether a file of `size` bytes goes multipart (above `threshold`, or above 5 GiB). */
export function usesMultipart(size, threshold = MULTIPART_THRESHOLD) {
  return size > Math.min(threshold, POST_OBJECT_MAX_BYTES);
}

/** CRC-64 of a Blob, read in 4 MiB slices (decimal string). */
export async function blobCrc64(blob, signal) {
  const crc = new Crc64();
  for (let offset = 0; offset < blob.size; offset += READ_CHUNK) {
    throwIfAborted(signal);
    let bytes;
    try {
      bytes = await blob.slice(offset, offset + READ_CHUNK).arrayBuffer();
    } catch (error) {
      throw new FileReadError(error);
    }
    crc.update(new Uint8Array(bytes));
  }
  return crc.value;
}

/** CRC-64 of a string's UTF-8 (a short, stable name for a localStorage key). */
function textCrc64(text) {
  return new Crc64().update(new TextEncoder().encode(text)).value;
}

/** The `sub` claim of a JWT, unverified (only to keep users' resume entries apart). */
function tokenSubject(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(payload + '==='.slice((payload.length + 3) % 4)));
    return typeof claims.sub === 'string' ? claims.sub : '';
  } catch {
    return '';
  }
}

function defaultStorage() {
  try {
    return globalThis.localStorage || null;
  } catch {
    return null; // storage disabled (e.g. third-party frame): no resume
  }
}

const GONE = Symbol('gone');

/** One failed attempt at a part (or at signing it): retried while attempts remain. */
class AttemptError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function createMultipart(options) {
  const {
    signatureUrl,
    multipartUrl = null,
    getToken,
    now,
    partConcurrency = DEFAULT_PART_CONCURRENCY,
    partRetries = DEFAULT_PART_RETRIES,
    retryDelayMs = 1000,
    maxRetryDelayMs = 30_000,
    stallTimeoutMs = 60_000,
    resumeStorage = defaultStorage(),
    resumeScope = null,
    verifyCrc64 = true,
  } = options;
  if (!Number.isInteger(partConcurrency) || partConcurrency < 1) {
    throw new TypeError('createUploader: partConcurrency must be an integer ≥ 1');
  }
  if (!Number.isInteger(partRetries) || partRetries < 0) {
    throw new TypeError('createUploader: partRetries must be an integer ≥ 0');
  }
  const pageBase = globalThis.location ? globalThis.location.href : undefined;
  const endpoint = multipartUrl
    ? new URL(multipartUrl, pageBase)
    : new URL(String(signatureUrl).replace(/signature(?=$|[?#])/, 'multipart'), pageBase);
  endpoint.search = '';
  const base = endpoint.href.replace(/\/$/, '');

  /** One JSON request to the sign function: {status, body, headers}; no answer → NetworkError. */
  async function call(method, suffix, payload, signal, stage) {
    const headers = { Accept: 'application/json' };
    const token = await getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    let text;
    try {
      response = await fetch(base + suffix, {
        method,
        headers,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal,
        credentials: 'same-origin',
      });
      text = await response.text();
    } catch {
      if (signal && signal.aborted) throw new UploadAbortedError();
      throw new NetworkError(stage);
    }
    return { status: response.status, ok: response.ok, body: parseJson(text), response };
  }

  // --- resume entries --------------------------------------------------------------------------

  async function resumeKeyFor(file, filename, path) {
    let scope = resumeScope;
    if (scope === null || scope === undefined) {
      const token = await getToken();
      scope = token ? tokenSubject(token) || `token:${textCrc64(token)}` : '';
    }
    const fingerprint = JSON.stringify([
      base,
      String(scope),
      path.replace(/\/$/, ''),
      filename,
      file.size,
      file.lastModified ?? null,
      file.type || '',
    ]);
    return { storageKey: RESUME_KEY_PREFIX + textCrc64(fingerprint), fingerprint };
  }

  function loadEntry(where) {
    if (!resumeStorage || !where) return null;
    try {
      const entry = JSON.parse(resumeStorage.getItem(where.storageKey) || 'null');
      return entry && entry.fingerprint === where.fingerprint ? entry : null;
    } catch {
      return null;
    }
  }

  /**
   * `acked`: one character per part, '1' once OSS acknowledged it (and, when it reported one,
   * with the part's own CRC-64). A resume trusts only those: a part OSS lists that the page never
   * saw acknowledged (its answer lost to a crash) may not hold these bytes, so it is sent again.
   */
  function saveEntry(where, session) {
    if (!resumeStorage || !where) return;
    const { uploadId, key, partSize, partCount, size, expire, acked } = session;
    const { fingerprint } = where;
    const entry = { fingerprint, uploadId, key, partSize, partCount, size, expire, acked };
    try {
      resumeStorage.setItem(where.storageKey, JSON.stringify(entry));
    } catch {
      // storage full or disabled: the upload works, it just cannot resume
    }
  }

  function forgetEntry(where) {
    if (!resumeStorage || !where) return;
    try {
      resumeStorage.removeItem(where.storageKey);
    } catch {
      // nothing to do
    }
  }

  // --- the session ---------------------------------------------------------------------------

  function checkSession(body, status, file) {
    const ok =
      body &&
      typeof body.uploadId === 'string' &&
      body.uploadId &&
      typeof body.key === 'string' &&
      Number.isInteger(body.partSize) &&
      body.partSize > 0 &&
      Number.isInteger(body.partCount) &&
      body.partCount === Math.max(1, Math.ceil(file.size / body.partSize));
    if (!ok) {
      const message = 'the multipart answer lacks uploadId, key or a part size that fits the file';
      throw new GrantError(status, 'MalformedGrant', message);
    }
    return body;
  }

  /** POST /multipart. Not cancelled by the signal: once OSS has an upload, it is aborted instead. */
  async function create(file, filename, path, signal) {
    const payload = { path, filename, size: file.size, type: file.type || '' };
    if (!payload.type) delete payload.type;
    const answer = await call('POST', '', payload, undefined, 'grant');
    if (!answer.ok) throw signFailure(answer.response, answer.body, now());
    const session = { ...checkSession(answer.body, answer.status, file), size: file.size };
    session.expire = Number(session.expire) || 0;
    if (signal && signal.aborted) {
      await abortOnServer(session.uploadId);
      throw new UploadAbortedError();
    }
    return session;
  }

  /** GET /multipart/{id}: the parts OSS has; GONE (404), or null when it does not fit. */
  async function listed(entry, file, signal) {
    const id = encodeURIComponent(entry.uploadId);
    const answer = await call('GET', `/${id}`, undefined, signal, 'api');
    if (answer.status === 404) return GONE;
    if (!answer.ok) throw signFailure(answer.response, answer.body, now());
    const body = answer.body || {};
    const fits = body.partSize === entry.partSize && body.partCount === entry.partCount;
    if (!fits || !Array.isArray(body.parts)) return null;
    if (body.size !== undefined && body.size !== file.size) return null;
    return body.parts;
  }

  /** DELETE /multipart/{id}, best effort (the sweeper and the lifecycle rule are the backstop). */
  async function abortOnServer(uploadId) {
    try {
      await call('DELETE', `/${encodeURIComponent(uploadId)}`, undefined, undefined, 'api');
    } catch {
      // offline: the upload expires and is aborted by the server
    }
  }

  // --- part URLs, signed in batches just before they are needed --------------------------------

  function createSigner(uploadId, upcoming, signal) {
    const urls = new Map(); // partNumber → {url, headers, expiresAt}
    const pending = new Map(); // partNumber → Promise<{url, headers, expiresAt}>
    const valid = (n) => {
      const have = urls.get(n);
      return have && have.expiresAt - now() > URL_MARGIN_MS;
    };

    async function request(numbers) {
      const id = encodeURIComponent(uploadId);
      const answer = await call('POST', `/${id}/parts`, { partNumbers: numbers }, signal, 'grant');
      if (!answer.ok) {
        const failure = signFailure(answer.response, answer.body, now());
        if (answer.status === 429 || answer.status >= 500) {
          const { code, serverMessage, retryAfter } = failure;
          throw new AttemptError(answer.status, code, serverMessage, retryAfter || 0);
        }
        throw failure;
      }
      const body = answer.body || {};
      const expire = Number(body.expire) * 1000;
      const signed = new Map();
      for (const part of Array.isArray(body.parts) ? body.parts : []) {
        if (!part || typeof part.url !== 'string') continue;
        const fallback = Number.isFinite(expire) ? expire : now() + 60_000;
        const expiresAt = urlExpiresAt(part.url) ?? fallback;
        signed.set(part.partNumber, { url: part.url, headers: part.headers || {}, expiresAt });
      }
      for (const n of numbers) {
        if (!signed.has(n)) {
          throw new GrantError(answer.status, 'MalformedGrant', `no URL for part ${n}`);
        }
        urls.set(n, signed.get(n));
      }
      return signed;
    }

    return {
      get(n) {
        if (valid(n)) return Promise.resolve(urls.get(n));
        if (pending.has(n)) return pending.get(n);
        const batch = [n];
        for (const m of upcoming()) {
          if (batch.length >= PART_URL_BATCH) break;
          if (m !== n && !pending.has(m) && !valid(m)) batch.push(m);
        }
        const promise = request(batch);
        for (const m of batch) {
          const one = promise.then((signed) => signed.get(m));
          one.catch(() => {}); // observed by whoever awaits it; no unhandled rejection otherwise
          const settled = () => pending.get(m) === one && pending.delete(m);
          one.then(settled, settled);
          pending.set(m, one);
        }
        return pending.get(n);
      },
      /** OSS refused the URL (expired, clock skew): the next attempt gets a new one. */
      drop(n) {
        urls.delete(n);
      },
    };
  }

  // --- one part ------------------------------------------------------------------------------

  function putPart(target, body, signal, onLoaded) {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(new UploadAbortedError());
        return;
      }
      const xhr = new XMLHttpRequest();
      let stalled = false;
      let timer = null;
      const watch = () => {
        // No byte sent (or no answer) for stallTimeoutMs: a dead connection, retried as one.
        clearTimeout(timer);
        timer = setTimeout(() => {
          stalled = true;
          xhr.abort();
        }, stallTimeoutMs);
      };
      const onAbort = () => xhr.abort();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      xhr.open('PUT', target.url);
      xhr.responseType = 'text';
      for (const [name, value] of Object.entries(target.headers)) {
        xhr.setRequestHeader(name, String(value)); // Content-MD5 when it was signed in
      }
      xhr.upload.onprogress = (event) => {
        watch();
        onLoaded(event.loaded);
      };
      xhr.onload = () => {
        done();
        if (xhr.status === 200) {
          resolve({
            etag: xhr.getResponseHeader('ETag') || '',
            crc64: xhr.getResponseHeader('x-oss-hash-crc64ecma') || '',
          });
          return;
        }
        const error = parseOssError(xhr.responseText);
        const code = error.code || `HTTP${xhr.status}`;
        reject(new AttemptError(xhr.status, code, error.message || 'no details from storage'));
      };
      xhr.onerror = () => {
        done();
        reject(new AttemptError(0, 'NetworkError', 'no answer from storage'));
      };
      xhr.ontimeout = xhr.onerror;
      xhr.onabort = () => {
        done();
        if (!stalled) reject(new UploadAbortedError());
        else reject(new AttemptError(0, 'Stalled', `nothing moved for ${stallTimeoutMs} ms`));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      watch();
      xhr.send(body); // a Blob slice without a type: no Content-Type, as the URL was signed
    });
  }

  /** Worth another attempt: no answer, an expired/refused URL, throttling, a server error. */
  function retryable(error) {
    if (!(error instanceof AttemptError)) return error instanceof NetworkError;
    const { status, code } = error;
    return (
      status === 0 ||
      status === 403 ||
      status === 408 ||
      status === 429 ||
      status >= 500 ||
      code === 'InvalidDigest' ||
      code === 'RequestTimeout' ||
      code === 'Crc64Mismatch'
    );
  }

  function backoff(attempt, retryAfter) {
    const cap = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** (attempt - 1));
    return Math.max(retryAfter * 1000, cap / 2 + (Math.random() * cap) / 2); // "equal jitter"
  }

  // --- the upload ----------------------------------------------------------------------------

  async function upload(file, opts) {
    const { path, filename, onProgress, onResume, signal } = opts;
    const where = resumeStorage ? await resumeKeyFor(file, filename, path) : null;
    let session = null;
    const present = new Map(); // partNumber → size, parts OSS already has
    const saved = loadEntry(where);
    if (saved && saved.size === file.size) {
      if (saved.expire && saved.expire * 1000 <= now()) {
        forgetEntry(where);
        await abortOnServer(saved.uploadId);
      } else {
        let parts;
        try {
          parts = await listed(saved, file, signal);
        } catch (error) {
          if (error instanceof UploadAbortedError) {
            forgetEntry(where); // cancelled while resuming: the earlier upload goes too
            await abortOnServer(saved.uploadId);
          }
          throw error;
        }
        if (parts === GONE) {
          // Completed (its answer lost to a reload or a crash) or aborted: a Complete again
          // answers the record of a completed upload, and 404 otherwise.
          const record = await completedBefore(saved);
          forgetEntry(where);
          if (record) {
            if (onProgress) onProgress({ loaded: file.size, total: file.size, fraction: 1 });
            return record;
          }
        } else if (parts) {
          session = saved;
          for (const part of parts) {
            const n = part.partNumber;
            const inRange = Number.isInteger(n) && n >= 1 && n <= saved.partCount;
            const acked = typeof saved.acked !== 'string' || saved.acked[n - 1] === '1';
            if (inRange && acked && part.size === partBytes(saved, n)) present.set(n, part.size);
          }
        } else {
          forgetEntry(where); // not this file's layout: start afresh
          await abortOnServer(saved.uploadId);
        }
      }
    }
    if (session) {
      const bytesDone = [...present.values()].reduce((a, b) => a + b, 0);
      const { uploadId, key, partCount } = session;
      if (onResume) onResume({ uploadId, key, partsDone: present.size, partCount, bytesDone });
    } else {
      throwIfAborted(signal);
      session = await create(file, filename, path, signal);
    }
    const acked = Array.from({ length: session.partCount }, (_, i) => +present.has(i + 1));
    session = { ...session, acked: acked.join('') };
    saveEntry(where, session);
    try {
      throwIfAborted(signal);
      return await sendAndComplete(file, session, present, where, onProgress, signal);
    } catch (error) {
      if (error instanceof UploadAbortedError) {
        forgetEntry(where);
        await abortOnServer(session.uploadId);
      }
      throw error;
    }
  }

  function partBytes(session, n) {
    const { partSize, partCount, size } = session;
    return n < partCount ? partSize : size - partSize * (partCount - 1);
  }

  async function sendAndComplete(file, session, present, where, onProgress, signal) {
    const { uploadId, key, partSize, partCount } = session;
    const stop = new AbortController(); // the user's abort, or the first part that gives up
    const onAbort = () => stop.abort();
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    const missing = [];
    for (let n = 1; n <= partCount; n += 1) if (!present.has(n)) missing.push(n);
    const signer = createSigner(uploadId, () => missing, stop.signal);
    const crcs = new Map(); // partNumber → Promise<decimal CRC-64> of the local bytes
    const slice = (n) => file.slice((n - 1) * partSize, (n - 1) * partSize + partBytes(session, n));
    const crcOf = (n) => {
      if (!crcs.has(n)) {
        const promise = blobCrc64(slice(n), stop.signal);
        promise.catch(() => {});
        crcs.set(n, promise);
      }
      return crcs.get(n);
    };

    if (verifyCrc64 && present.size) {
      // The parts OSS already has are read in the background, one at a time, for the file's CRC.
      (async () => {
        for (const n of present.keys()) await crcOf(n).catch(() => {});
      })();
    }

    let acknowledged = [...present.values()].reduce((a, b) => a + b, 0);
    let partsDone = present.size;
    const inFlight = new Map(); // partNumber → bytes sent so far
    const report = () => {
      if (!onProgress) return;
      let loaded = acknowledged;
      for (const bytes of inFlight.values()) loaded += bytes;
      loaded = Math.min(loaded, file.size);
      const fraction = file.size ? loaded / file.size : 1;
      onProgress({ loaded, total: file.size, fraction, partsDone, partCount });
    };
    report();

    async function sendPart(n) {
      const size = partBytes(session, n);
      const localCrc = verifyCrc64 ? crcOf(n) : null;
      for (let attempt = 1; ; attempt += 1) {
        let lastError;
        let refused = false;
        try {
          const target = await signer.get(n);
          inFlight.set(n, 0);
          const stored = await putPart(target, slice(n), stop.signal, (bytes) => {
            inFlight.set(n, Math.min(bytes, size));
            report();
          });
          if (localCrc && stored.crc64) {
            const mine = await localCrc;
            if (mine !== stored.crc64) {
              const message = `OSS stored CRC-64 ${stored.crc64}, the part has ${mine}`;
              throw new AttemptError(200, 'Crc64Mismatch', message);
            }
          }
          inFlight.delete(n);
          session.acked = `${session.acked.slice(0, n - 1)}1${session.acked.slice(n)}`;
          saveEntry(where, session);
          acknowledged += size;
          partsDone += 1;
          report();
          return;
        } catch (error) {
          inFlight.delete(n);
          report();
          if (stop.signal.aborted || error instanceof UploadAbortedError) {
            throw new UploadAbortedError();
          }
          if (!retryable(error)) {
            if (error instanceof AttemptError) {
              if (error.status === 404) forgetEntry(where); // NoSuchUpload: it cannot resume
              throw new UploadRejectedError(error.status, error.code, error.message);
            }
            throw error;
          }
          if (attempt > partRetries) {
            const { status = 0, code = 'NetworkError', message } = error;
            throw new PartUploadError(n, attempt, status, code, message, uploadId, key);
          }
          lastError = error;
          refused = error.status === 403;
        }
        if (refused) signer.drop(n); // expired or refused URL: sign this part again
        // A first refusal is most likely an expired URL: re-sign at once; back off otherwise.
        if (!(refused && attempt === 1)) {
          await sleep(backoff(attempt, lastError.retryAfter || 0), stop.signal);
        }
      }
    }

    let failure = null;
    async function worker() {
      while (missing.length && !failure) {
        const n = missing.shift();
        try {
          await sendPart(n);
        } catch (error) {
          if (!failure) failure = error;
          stop.abort();
        }
      }
    }

    try {
      await Promise.all(Array.from({ length: Math.min(partConcurrency, missing.length) }, worker));
      if (signal && signal.aborted) throw new UploadAbortedError();
      if (failure) throw failure;
      // The file's CRC-64 from its parts' (those OSS already had were read meanwhile).
      let whole = null;
      if (verifyCrc64) {
        whole = '0';
        for (let n = 1; n <= partCount; n += 1) {
          whole = combineCrc64(whole, await crcOf(n), partBytes(session, n));
        }
      }
      throwIfAborted(signal);
      const record = await complete(session, where);
      const stored = record.crc64 === undefined || record.crc64 === null ? '' : String(record.crc64);
      if (whole !== null && stored !== '' && stored !== whole) {
        throw new IntegrityError(whole, stored, record);
      }
      return record;
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort);
      stop.abort(); // nothing of this upload keeps running
    }
  }

  /** The record of an upload completed earlier, or null (aborted, expired: start afresh). */
  async function completedBefore(entry) {
    const id = encodeURIComponent(entry.uploadId);
    let answer;
    try {
      answer = await call('POST', `/${id}/complete`, {}, undefined, 'upload');
    } catch {
      return null;
    }
    const body = answer.body;
    const ok = answer.ok && body && body.Status === 'OK' && body.key === entry.key;
    return ok ? body : null;
  }

  /** POST /multipart/{id}/complete: the callback's answer, read as a PostObject's. */
  async function complete(session, where) {
    const { uploadId, key } = session;
    // Not cancellable: OSS finishes a Complete it has started whatever the browser does.
    const id = encodeURIComponent(uploadId);
    const answer = await call('POST', `/${id}/complete`, {}, undefined, 'upload');
    const body = answer.body;
    if (answer.ok) {
      forgetEntry(where);
      if (body && body.Status === 'OK') return body;
      if (body && body.Status === 'Rejected') {
        const message = String(body.message || 'the upload was rejected');
        if (body.code === 'QuotaExceeded') {
          throw new QuotaExceededError('upload', answer.status, message);
        }
        throw new UploadRefusedError(String(body.code || 'Rejected'), message, key);
      }
      const code = (body && body.code) || 'CallbackFailed';
      const message = (body && body.message) || 'the upload callback did not answer OK';
      throw new NotRecordedError(answer.status, code, message, key);
    }
    // Refused (400: parts that cannot add up, and then the server aborted the upload; or parts
    // missing). The entry stays: choosing the file again finds out which (404 → a new upload).
    if (answer.status === 400 || answer.status === 409) {
      const code = (body && body.code) || `HTTP${answer.status}`;
      throw new UploadRejectedError(answer.status, code, (body && body.message) || 'no details');
    }
    if (answer.status === 404) forgetEntry(where);
    throw signFailure(answer.response, body, now());
  }

  return { upload };
}

/** Wait `ms`, or reject as aborted as soon as `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new UploadAbortedError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new UploadAbortedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// --- the PostObject request ------------------------------------------------------------------

/** PostObject form order (protocol §2.2): `key` first, the grant's fields as given, `file` last. */
export function buildForm(grant, file, filename) {
  const key = grant.key || grant.dir + randomId() + extensionOf(filename, true);
  const form = new FormData();
  form.append('key', key);
  for (const [name, value] of Object.entries(grant.fields)) form.append(name, String(value));
  form.append('file', file, filename);
  return { form, key };
}

function postObject(grant, file, filename, onProgress, signal) {
  const { form, key } = buildForm(grant, file, filename);
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(new UploadAbortedError());
      return;
    }
    const xhr = new XMLHttpRequest();
    const onAbort = () => xhr.abort();
    const done = () => signal && signal.removeEventListener('abort', onAbort);
    xhr.open('POST', grant.host);
    xhr.responseType = 'text';
    if (onProgress) {
      xhr.upload.onprogress = (event) => {
        const total = event.lengthComputable ? event.total : file.size;
        onProgress({ loaded: event.loaded, total, fraction: total ? event.loaded / total : 0 });
      };
    }
    xhr.onload = () => {
      done();
      try {
        resolve(readUploadResponse(xhr.status, xhr.responseText, key, xhr));
      } catch (error) {
        reject(error);
      }
    };
    xhr.onerror = () => {
      done();
      reject(new NetworkError('upload'));
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => {
      done();
      reject(new UploadAbortedError());
    };
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    xhr.send(form);
  });
}

/** What the uploader receives (protocol §7): 200 + callback JSON, 203 CallbackFailed, XML error. */
export function readUploadResponse(status, text, key, xhr) {
  const requestId = (xhr && xhr.getResponseHeader('x-oss-request-id')) || undefined;
  if (status >= 200 && status < 300) {
    const record = parseJson(text);
    if (status === 200 && record && typeof record === 'object' && record.Status === 'OK') {
      return record;
    }
    if (status === 200 && record && typeof record === 'object' && record.Status === 'Rejected') {
      // Our callback refused the stored file and deleted it (DESIGN.md, Verification).
      const message = String(record.message || 'the upload was rejected');
      if (record.code === 'QuotaExceeded') throw new QuotaExceededError('upload', status, message);
      throw new UploadRefusedError(String(record.code || 'Rejected'), message, key);
    }
    // 2xx means OSS stored the object; without our callback's answer it has no record.
    const error = parseOssError(text);
    const code = error.code || (status === 203 ? 'CallbackFailed' : `HTTP${status}`);
    const message =
      error.message || (record && record.message) || 'the upload callback did not answer OK';
    throw new NotRecordedError(status, code, message, key, error.requestId || requestId);
  }
  const error = parseOssError(text);
  throw new UploadRejectedError(
    status,
    error.code || `HTTP${status}`,
    error.message || 'no details from storage',
    error.requestId || requestId,
  );
}

/** OSS error bodies: `<Error><Code/><Message/><RequestId/>…</Error>`. */
export function parseOssError(text) {
  const result = { code: '', message: '', requestId: '' };
  if (!text || text.indexOf('<Error') < 0) return result;
  if (typeof DOMParser !== 'undefined') {
    const doc = new DOMParser().parseFromString(text, 'application/xml');
    if (!doc.getElementsByTagName('parsererror').length) {
      const pick = (tag) => {
        const node = doc.getElementsByTagName(tag)[0];
        return node ? node.textContent.trim() : '';
      };
      return { code: pick('Code'), message: pick('Message'), requestId: pick('RequestId') };
    }
  }
  const pick = (tag) => {
    const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(text);
    return match ? decodeXmlText(match[1]).trim() : '';
  };
  return { code: pick('Code'), message: pick('Message'), requestId: pick('RequestId') };
}

function isPolicyExpired(error) {
  return (
    error instanceof UploadRejectedError &&
    error.code === 'AccessDenied' &&
    /policy expired/i.test(error.serverMessage)
  );
}

// --- helpers ---------------------------------------------------------------------------------

/** Run at most `size` tasks at once; a task whose signal aborts while queued never starts. */
function createLimiter(size) {
  let running = 0;
  const queue = [];
  const next = () => {
    while (running < size && queue.length) {
      const job = queue.shift();
      if (job.signal && job.signal.aborted) {
        job.reject(new UploadAbortedError());
        continue;
      }
      running += 1;
      job.signal && job.signal.removeEventListener('abort', job.onAbort);
      Promise.resolve()
        .then(job.task)
        .then(job.resolve, job.reject)
        .finally(() => {
          running -= 1;
          next();
        });
    }
  };
  return (task, signal) =>
    new Promise((resolve, reject) => {
      if (signal && signal.aborted) {
        reject(new UploadAbortedError());
        return;
      }
      const job = { task, signal, resolve, reject, onAbort: null };
      if (signal) {
        job.onAbort = () => {
          const index = queue.indexOf(job);
          if (index >= 0) {
            queue.splice(index, 1);
            reject(new UploadAbortedError());
          }
        };
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      queue.push(job);
      next();
    });
}

/** The error for a sign-function refusal: 429 → rate limit, QuotaExceeded → quota, else grant. */
function signFailure(response, body, nowMs) {
  const message = (body && body.message) || response.statusText || 'no details';
  if (response.status === 429) {
    return new TooManyRequestsError(retryAfterSeconds(response.headers), message, nowMs);
  }
  if (body && body.code === 'QuotaExceeded') {
    return new QuotaExceededError('grant', response.status, message);
  }
  return new GrantError(response.status, (body && body.code) || `HTTP${response.status}`, message);
}

/** Retry-After in seconds (RFC 9110 §10.2.3: seconds or an HTTP date); 1 when unreadable. */
function retryAfterSeconds(headers) {
  const value = (headers && headers.get('Retry-After')) || '';
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(1, Math.ceil((date - Date.now()) / 1000)) : 1;
}

function checkGrant(body, status) {
  const ok =
    body &&
    typeof body === 'object' &&
    typeof body.host === 'string' &&
    typeof body.dir === 'string' &&
    Number.isFinite(Number(body.expire)) &&
    body.fields &&
    typeof body.fields === 'object';
  if (!ok) throw new GrantError(status, 'MalformedGrant', 'the grant lacks host, dir, expire or fields');
  return { ...body, expire: Number(body.expire) };
}

/** Settle with `promise`, or reject as aborted as soon as `signal` aborts. */
function withSignal(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new UploadAbortedError());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new UploadAbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function throwIfAborted(signal) {
  if (signal && signal.aborted) throw new UploadAbortedError();
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function decodeXmlText(text) {
  const named = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, entity) => {
    if (entity[0] !== '#') return named[entity.toLowerCase()];
    const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : +entity.slice(1);
    return String.fromCodePoint(code);
  });
}

/**
 * When a presigned OSS URL stops working (ms since the epoch), or null when it does not expire
 * (public URLs): V4 `x-oss-date` + `x-oss-expires`, V1 `Expires`.
 */
export function urlExpiresAt(url) {
  if (!url) return null;
  let params;
  try {
    params = new URL(url).searchParams;
  } catch {
    return null;
  }
  const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(params.get('x-oss-date') || '');
  const expires = Number(params.get('x-oss-expires'));
  if (date && Number.isFinite(expires)) {
    const [, y, mo, d, h, mi, s] = date.map(Number);
    return Date.UTC(y, mo - 1, d, h, mi, s) + expires * 1000;
  }
  const v1 = Number(params.get('Expires'));
  return params.has('Expires') && Number.isFinite(v1) ? v1 * 1000 : null;
}

/** The file's extension with its dot (`.png`), lower-case; '' when it has none or an odd one. */
export function extensionOf(name, withDot = false) {
  const match = /\.([A-Za-z0-9]{1,16})$/.exec(name || '');
  if (!match) return '';
  return (withDot ? '.' : '') + match[1].toLowerCase();
}

/** A random RFC 4122 v4 UUID (works outside secure contexts, unlike crypto.randomUUID). */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
