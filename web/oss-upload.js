// oss-upload.js — browser uploads straight to Alibaba Cloud OSS with a grant from our sign
// function. An ES module with no dependencies; types in oss-upload.d.ts.
//
//   const uploader = createUploader({ signatureUrl: '/signature', getToken: () => token });
//   const record = await uploader.upload(file, { path: 'avatars', onProgress, signal });
//
// The flow (DESIGN.md): GET /signature → POST the form (key, fields…, file) to the grant's
// host → OSS calls our callback → OSS hands its JSON answer back to us: that is the record.

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
    /** 'grant' | 'quota' | 'rate-limited' | 'rejected' | 'refused' | 'not-recorded' | 'network' | 'aborted' | 'api' */
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
  } = options || {};
  if (!signatureUrl) throw new TypeError('createUploader: signatureUrl is required');
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TypeError('createUploader: concurrency must be an integer ≥ 1');
  }
  const limit = createLimiter(concurrency);
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
    if (!response.ok) {
      const message = (body && body.message) || response.statusText || 'no details';
      if (response.status === 429) {
        throw new TooManyRequestsError(retryAfterSeconds(response.headers), message, now());
      }
      if (body && body.code === 'QuotaExceeded') {
        throw new QuotaExceededError('grant', response.status, message);
      }
      throw new GrantError(
        response.status,
        (body && body.code) || `HTTP${response.status}`,
        (body && body.message) || response.statusText || 'no details',
      );
    }
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
