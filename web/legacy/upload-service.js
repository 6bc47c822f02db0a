// The legacy upload client (../../../shared/legacy-client.ts in the team folder), ported to plain
// JavaScript as written, with the helpers such frontends define. It talks V1 only: it builds the
// key itself (path + uuid + '.' + ext) and sends key, policy, OSSAccessKeyId,
// success_action_status=200, signature, callback, file — kept unchanged on purpose, because the
// sign function must keep serving clients like it (OSS_SIGNATURE_VERSION=v1, AUTH_MODE=none,
// UPLOAD_KEY_PREFIX= empty). New code should use ../oss-upload.js.

/** Strips a leading "/" and ensures one trailing "/" ('' stays '': the caller's root). */
export function normalizePath(p) {
  const path = String(p || '').replace(/^\/+/, '');
  return path ? path.replace(/\/*$/, '/') : '';
}

/** Extension without the dot, "" when none. */
export function getExt(name) {
  const base = String(name || '').split('/').pop();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1) : '';
}

/** A random UUID string. */
export function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A map with per-entry expiry: set(key, value, expiresAtMillis); get() forgets stale entries. */
export class ExpiringCache {
  constructor(now = () => Date.now()) {
    this.now = now;
    this.entries = new Map();
  }

  get(key) {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.now() >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, expiresAtMillis) {
    this.entries.set(key, { value, expiresAt: expiresAtMillis });
  }
}

/** What `observe` receives: an EventTarget that dispatches 'progress' events while uploading. */
export class FetchObserver extends EventTarget {}

export class UploadService {
  static cache = new ExpiringCache();

  constructor(basePath = '') {
    this.basePath = basePath;
  }

  /** fetch/XHR wrapper: for GET the body becomes the query string; the answer is parsed as JSON. */
  request(url, { method = 'GET', body, signal, observe } = {}) {
    return new Promise((resolve, reject) => {
      let target = url;
      if (method === 'GET' && body) {
        const query = new URLSearchParams(body).toString();
        target += (target.includes('?') ? '&' : '?') + query;
      }
      const xhr = new XMLHttpRequest();
      xhr.open(method, target);
      if (observe) {
        const observer = new FetchObserver();
        observe(observer);
        xhr.upload.onprogress = (event) => {
          const progress = new Event('progress');
          progress.loaded = event.loaded;
          progress.total = event.total;
          observer.dispatchEvent(progress);
        };
      }
      xhr.onload = () => {
        let data;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          reject(new Error(`HTTP ${xhr.status}: ${xhr.responseText.slice(0, 300)}`));
          return;
        }
        if (xhr.status < 200 || xhr.status >= 300) {
          reject(new Error(data.message || `HTTP ${xhr.status}`));
          return;
        }
        resolve(data);
      };
      xhr.onerror = () => reject(new Error('network error'));
      xhr.onabort = () => reject(new DOMException('Upload cancelled', 'AbortError'));
      if (signal) {
        if (signal.aborted) {
          reject(new DOMException('Upload cancelled', 'AbortError'));
          return;
        }
        signal.addEventListener('abort', () => xhr.abort(), { once: true });
      }
      xhr.send(method === 'GET' ? null : body);
    });
  }

  /** @name 获取上传签名 */
  getSignature = async (path) => {
    const cache = UploadService.cache.get(path);
    if (cache) return cache;
    const signature = await this.request(`${this.basePath}/signature`, {
      method: 'GET',
      body: { path },
    });
    const expired = parseInt(signature.expire) * 1000;
    UploadService.cache.set(path, signature, expired);
    return signature;
  };

  /** @name 上传到OSS */
  upload = async (file, path, observe, signal) => {
    path = normalizePath(path);
    const ext = getExt(file.name);
    //获取签名
    const signature = await this.getSignature(path);
    const formData = new FormData();
    const key = path + uuid() + (ext && '.') + ext;
    formData.append('key', key);
    formData.append('policy', signature.policy);
    formData.append('OSSAccessKeyId', signature.accessid);
    formData.append('success_action_status', '200');
    formData.append('signature', signature.signature);
    formData.append('callback', signature.callback);
    formData.append('file', file);
    const { Status, message } = await this.request(signature.host, {
      method: 'POST',
      body: formData,
      signal,
      observe,
    });
    if (Status !== 'OK') {
      throw new Error(message);
    }
    return key;
  };
}
