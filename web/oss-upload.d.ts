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
  /** Bytes of the request body sent so far; multipart: bytes of the parts OSS acknowledged
   *  plus the bytes of the parts in flight (a part that fails and is retried counts again
   *  from 0, so this can step back). */
  loaded: number;
  /** Bytes of the whole request body (PostObject: the form, slightly more than the file;
   *  multipart: the file). */
  total: number;
  /** loaded / total, from 0 to 1. */
  fraction: number;
  /** Multipart only: parts OSS has acknowledged (resumed ones included). */
  partsDone?: number;
  /** Multipart only: parts in the upload. */
  partCount?: number;
}

/** Told once, before any part is sent, when an upload picks up an earlier one. */
export interface ResumeInfo {
  uploadId: string;
  key: string;
  /** Parts OSS already has (they are not sent again). */
  partsDone: number;
  partCount: number;
  /** Bytes in those parts. */
  bytesDone: number;
}

/** What POST /multipart answers (DESIGN.md, "Multipart uploads"). */
export interface MultipartSession {
  uploadId: string;
  /** The server-chosen key. */
  key: string;
  /** Bytes of every part but the last. */
  partSize: number;
  partCount: number;
  /** Unix seconds: the upload is aborted by the server after this. */
  expire: number;
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

  // Multipart (large files, resumable); see MULTIPART_THRESHOLD and the error classes below.
  /** The sign function's /multipart (default: `signatureUrl` with `signature` replaced by
   *  `multipart`). */
  multipartUrl?: string;
  /** Files larger than this (bytes) go multipart (default MULTIPART_THRESHOLD, 100 MiB);
   *  files above POST_OBJECT_MAX_BYTES always do. */
  multipartThreshold?: number;
  /** Parts in flight at once per upload (default 4). */
  partConcurrency?: number;
  /** Retries of a part after its first failure (default 5); then PartUploadError. */
  partRetries?: number;
  /** First retry delay in ms (default 1000), doubled per retry up to `maxRetryDelayMs`
   *  (default 30000), with jitter (half to all of it). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** A part PUT with no progress (nor answer) for this long is cut and retried (default 60000). */
  stallTimeoutMs?: number;
  /** Where resume entries live (default localStorage; null: no resume). */
  resumeStorage?: Storage | null;
  /** Whose uploads these are, in the resume fingerprint (default: the token's `sub`). */
  resumeScope?: string | null;
  /** Compare each part's and the whole object's CRC-64 with OSS's (default true). */
  verifyCrc64?: boolean;
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
  /** Aborts the upload; a multipart upload is then aborted on the server too (DELETE
   *  /multipart/{id}), unless its Complete has already been sent. */
  signal?: AbortSignal;
  /** Force (true) or forbid (false) multipart for this file; default: by size. */
  multipart?: boolean;
  /** Multipart: called when this upload continues an earlier one of the same file. */
  onResume?: (info: ResumeInfo) => void;
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
  | 'api'
  | 'part-failed'
  | 'integrity'
  | 'file';

/** Base class of every error `upload()` rejects with. */
export declare class UploadError extends Error {
  readonly kind: UploadErrorKind;
}

/** The sign function refused or failed to issue a grant; for multipart uploads also a refused
 *  POST /multipart, part URLs, or a Complete it could not run (401, 404 `NotFound`, 503…). */
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

/** OSS refused the upload (XML error); nothing was stored. Multipart: OSS refused a part for
 *  good (e.g. 404 `NoSuchUpload`), or the sign function refused the Complete (400 `BadRequest`:
 *  parts missing, or parts that cannot add up — then the upload was aborted). */
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

/** Multipart: a part failed on every attempt (network, 5xx, refused URL…). The upload stays
 *  open on the server: uploading the same file again resumes it. */
export declare class PartUploadError extends UploadError {
  readonly kind: 'part-failed';
  readonly partNumber: number;
  /** Attempts made (1 + partRetries). */
  readonly attempts: number;
  /** HTTP status of the last attempt; 0 when there was no answer. */
  readonly status: number;
  /** OSS error code of the last attempt, or `NetworkError`, `Stalled`, `Crc64Mismatch`. */
  readonly code: string;
  readonly serverMessage: string;
  readonly uploadId: string;
  readonly key: string;
}

/** Multipart: the stored object's CRC-64 differs from the file's. It is stored and recorded
 *  (`record`); delete it (`deleteUpload(key)`) and upload again. */
export declare class IntegrityError extends UploadError {
  readonly kind: 'integrity';
  /** The file's CRC-64 (unsigned decimal). */
  readonly expected: string;
  /** The object's, from the record. */
  readonly actual: string;
  readonly key: string;
  readonly record: UploadRecord;
}

/** The file could not be read (moved, deleted or changed since it was chosen). */
export declare class FileReadError extends UploadError {
  readonly kind: 'file';
}

/** Files larger than this go multipart by default: 100 MiB. */
export declare const MULTIPART_THRESHOLD: number;
/** PostObject's limit (5 GiB): larger files always go multipart. */
export declare const POST_OBJECT_MAX_BYTES: number;
export declare const DEFAULT_PART_CONCURRENCY: number;
export declare const DEFAULT_PART_RETRIES: number;
/** Part URLs asked for per request to the sign function. */
export declare const PART_URL_BATCH: number;
/** localStorage keys of resume entries start with this. */
export declare const RESUME_KEY_PREFIX: string;

/** Whether a file of `size` bytes goes multipart with this threshold. */
export declare function usesMultipart(size: number, threshold?: number): boolean;

/** CRC-64/ECMA-182 of a Blob as OSS computes `x-oss-hash-crc64ecma` (unsigned decimal). */
export declare function blobCrc64(blob: Blob, signal?: AbortSignal): Promise<string>;

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
