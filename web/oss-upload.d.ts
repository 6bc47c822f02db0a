// Type declarations for oss-upload.js (browser uploads straight to Alibaba Cloud OSS).

/** Default number of uploads that run at once. */
export declare const DEFAULT_CONCURRENCY: number;
/** A cached prefix grant is dropped this long before its expiry (or at half its lifetime). */
export declare const GRANT_MARGIN_MS: number;

/** What GET /signature answers (DESIGN.md, "Sign function"). */
export interface Grant {
  /** URL the form is POSTed to. */
  host: string;
  /** The caller's folder (ends with '/'). */
  dir: string;
  /** Exact-key grants only: the server-chosen key. */
  key?: string;
  /** Base64 policy document. */
  policy: string;
  /** Policy expiry, Unix seconds. */
  expire: number;
  /** Base64 callback JSON (also inside `fields`). */
  callback: string;
  /** Every form field to send, in order, between `key` and `file`. */
  fields: Record<string, string>;
  version: 'v4' | 'v1';
  /** V1 only. */
  accessid?: string;
  /** V1 only. */
  signature?: string;
}

/** The record our callback wrote, as OSS passes the callback's JSON answer through. */
export interface UploadRecord {
  /** 'OK' in the callback's answer; absent from GET /uploads and GET /uploads/{key}. */
  Status?: 'OK';
  key: string;
  size: number;
  etag: string;
  mimeType: string;
  owner: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  bucket?: string;
  imageInfo?: { width: number | null; height: number | null; format: string } | null;
  /** The client's file name (exact-key grants), '' when it gave none. */
  fileName?: string;
  /** A download URL: presigned (DOWNLOAD_MODE=signed, expires: see `fresh`) or public. From
   *  the sign function always; from the callback when DOWNLOAD_BASE_URL is set. */
  url?: string;
  /** For images: a thumbnail URL (IMAGE_THUMBNAIL_PROCESS inside the signature). */
  thumbnailUrl?: string;
  [field: string]: unknown;
}

export interface UploadProgress {
  /** Bytes of the request body sent so far. */
  loaded: number;
  /** Bytes of the whole request body (the form, slightly more than the file). */
  total: number;
  /** loaded / total, from 0 to 1. */
  fraction: number;
}

export interface UploaderOptions {
  /** URL of the sign function's GET /signature (relative URLs resolve against the page). */
  signatureUrl: string;
  /** Bearer token for the sign function; return null/undefined to send none. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** GET/DELETE /uploads/{key} live under this URL (default: `uploads` beside signatureUrl). */
  uploadsUrl?: string;
  /** Ask for an exact, server-chosen key per file instead of a cached prefix grant. */
  exactKeys?: boolean;
  /** Uploads running at once (default 3). */
  concurrency?: number;
  /** Clock in milliseconds (default Date.now), used for the grant cache and `retryAt`. */
  now?: () => number;
  /** URL of GET /quota (default: `signatureUrl` with `signature` replaced by `quota`). */
  quotaUrl?: string;
}

/** What GET /quota answers: committed and reserved bytes and files, `limit` null if none. */
export interface Quota {
  bytes: { used: number; reserved: number; limit: number | null };
  files: { used: number; reserved: number; limit: number | null };
}

export interface UploadOptions {
  /** Folder inside the caller's space ('' = the root; 'avatars' or 'avatars/'). */
  path?: string;
  /** File name to use when `file` is a Blob without one (its extension picks the type). */
  filename?: string;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface Uploader {
  /** Upload one file; resolves to the record the callback returned. */
  upload(file: Blob, options?: UploadOptions): Promise<UploadRecord>;
  /** The (cached) prefix grant for a folder, e.g. to learn the upload host. */
  grant(path?: string, options?: { signal?: AbortSignal }): Promise<Grant>;
  /** The caller's quota (GET /quota). */
  quota(options?: { signal?: AbortSignal }): Promise<Quota>;
  /** The caller's record for `key` (GET /uploads/{key}) with fresh download URLs; an
   *  `ApiError` 404 `NotFound` when it is not the caller's or does not exist. */
  getUpload(key: string, options?: { signal?: AbortSignal }): Promise<UploadRecord>;
  /** Delete the caller's upload (DELETE /uploads/{key}): the object, then its record. */
  deleteUpload(key: string, options?: { signal?: AbortSignal }): Promise<void>;
  /** `record` while its URLs outlive `margin` ms (default URL_MARGIN_MS), else it re-read with
   *  new ones: call before using a URL a page has held for a while. */
  fresh(record: UploadRecord, options?: { margin?: number; signal?: AbortSignal }): Promise<UploadRecord>;
}

export declare function createUploader(options: UploaderOptions): Uploader;

export type UploadErrorKind =
  | 'grant'
  | 'quota'
  | 'rate-limited'
  | 'rejected'
  | 'refused'
  | 'not-recorded'
  | 'network'
  | 'aborted'
  | 'api';

/** Base class of every error `upload()` rejects with. */
export declare class UploadError extends Error {
  readonly kind: UploadErrorKind;
}

/** The sign function refused or failed to issue a grant. */
export declare class GrantError extends UploadError {
  readonly kind: 'grant';
  /** HTTP status of the sign function's answer. */
  readonly status: number;
  /** Our stable error code (`Unauthorized`, `BadRequest`, `TooLarge`…). */
  readonly code: string;
  readonly serverMessage: string;
}

/** No room in the caller's quota: the grant was refused (403), or the callback rejected and
 * deleted the stored file (`stage: 'upload'`). */
export declare class QuotaExceededError extends UploadError {
  readonly kind: 'quota';
  readonly stage: 'grant' | 'upload';
  readonly status: number;
  readonly code: 'QuotaExceeded';
  readonly serverMessage: string;
}

/** Too many grants in a minute (429). */
export declare class TooManyRequestsError extends UploadError {
  readonly kind: 'rate-limited';
  readonly status: 429;
  readonly code: 'TooManyRequests';
  /** Seconds to wait (the Retry-After header, at least 1). */
  readonly retryAfter: number;
  /** When to try again, milliseconds since the epoch (by the uploader's clock). */
  readonly retryAt: number;
  readonly serverMessage: string;
}

/** The callback refused the stored file for another reason (`code`, e.g. ContentRejected). */
export declare class UploadRefusedError extends UploadError {
  readonly kind: 'refused';
  readonly status: number;
  readonly code: string;
  readonly serverMessage: string;
  readonly key: string;
}

/** OSS refused the upload (XML error); nothing was stored. */
export declare class UploadRejectedError extends UploadError {
  readonly kind: 'rejected';
  readonly status: number;
  /** OSS error code (`AccessDenied`, `EntityTooLarge`, `SignatureDoesNotMatch`…), or our
   *  callback's (`ContentRejected`). */
  readonly code: string;
  readonly serverMessage: string;
  readonly requestId?: string;
}

/** OSS stored the object but the callback did not record it (203 CallbackFailed). */
export declare class NotRecordedError extends UploadError {
  readonly kind: 'not-recorded';
  readonly status: number;
  readonly code: string;
  readonly serverMessage: string;
  /** The key the object was stored under. */
  readonly key: string;
  readonly requestId?: string;
}

/** No HTTP answer at all (offline, DNS, CORS, reset). */
export declare class NetworkError extends UploadError {
  readonly kind: 'network';
  readonly stage: 'grant' | 'upload' | 'api';
}

/** GET or DELETE /uploads/{key} refused (404 `NotFound`, 401 `Unauthorized`, 503…). */
export declare class ApiError extends UploadError {
  readonly kind: 'api';
  readonly status: number;
  readonly code: string;
  readonly serverMessage: string;
}

/** Download URLs are refreshed this long (ms) before they expire. */
export declare const URL_MARGIN_MS: number;

/** When a presigned OSS URL expires (ms since the epoch); null when it does not (public URLs). */
export declare function urlExpiresAt(url: string | null | undefined): number | null;

/** Cancelled through the AbortSignal; `name` is 'AbortError'. */
export declare class UploadAbortedError extends UploadError {
  readonly kind: 'aborted';
  readonly name: 'AbortError';
}

/** The multipart form in PostObject order: key, the grant's fields, file. */
export declare function buildForm(
  grant: Grant,
  file: Blob,
  filename: string,
): { form: FormData; key: string };

/** Parse an OSS XML error body; empty strings when absent. */
export declare function parseOssError(text: string): {
  code: string;
  message: string;
  requestId: string;
};

/** Interpret a PostObject response (throws the matching UploadError). */
export declare function readUploadResponse(
  status: number,
  text: string,
  key: string,
  xhr?: XMLHttpRequest,
): UploadRecord;

/** The file's extension, lower-case ('' when none); with the dot when `withDot`. */
export declare function extensionOf(name: string, withDot?: boolean): string;

/** A random RFC 4122 v4 UUID. */
export declare function randomId(): string;
