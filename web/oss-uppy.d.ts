// Type declarations for oss-uppy.js (Uppy 6 `@uppy/aws-s3` through our sign function).

/** @uppy/aws-s3 never cuts parts under 5 MiB (OSS would take 100 KiB). */
export declare const UPPY_MIN_PART_BYTES: number;
/** The sign function's default MULTIPART_PART_BYTES (8 MiB). */
export declare const DEFAULT_PART_BYTES: number;

/** The sign function refused a request: HTTP status and our JSON error `code`. */
export declare class OssSignError extends Error {
  name: 'OssSignError';
  status: number;
  code: string;
  serverMessage: string;
}

export interface OssUppyOptions {
  /** The sign function's base URL; '' when it serves the page's own origin. */
  signEndpoint: string;
  /** The caller's `Authorization` value ('Bearer <JWT>') or a bare JWT; called per request. */
  getAuthorization: () => string | Promise<string>;
  /** The folder inside the caller's space (DESIGN `path`); '' by default. */
  path?: string;
  /** Must equal the sign function's MULTIPART_PART_BYTES (≥ 5 MiB); default 8 MiB. */
  partSize?: number;
  /** Files larger than this go multipart; default `partSize` (a single PUT holds one part). */
  multipartThreshold?: number;
  /** 'put' (default): a presigned PutObject; 'form': a PostObject form, whose policy OSS
   *  enforces (size included) before storing anything. */
  smallFiles?: 'put' | 'form';
  /** For tests: the fetch used to call the sign function. */
  fetch?: typeof fetch;
}

/** One request @uppy/aws-s3 6.x asks to have signed. */
export interface OssPresignableRequest {
  method: 'PUT' | 'POST' | 'GET' | 'DELETE';
  key: string;
  uploadId?: string;
  partNumber?: number;
  contentType?: string;
}

/** What signRequest answers: the URL, the server's key, the headers the signature covers, or
 *  (smallFiles: 'form') the PostObject form's fields. */
export interface OssPresignedResponse {
  url: string;
  key?: string;
  headers?: Record<string, string>;
  fields?: Record<string, string>;
}

/** The options to pass as `uppy.use(AwsS3, createOssUppyOptions({...}))`. */
export interface OssAwsS3Options {
  signRequest(request: OssPresignableRequest): Promise<OssPresignedResponse>;
  shouldUseMultipart(file: { size: number | null }): boolean;
  getChunkSize(file: { size: number }): number;
  generateObjectKey(file: { name?: string; size: number | null; type?: string }): string;
}

export declare function createOssUppyOptions(options: OssUppyOptions): OssAwsS3Options;

/** The record our callback wrote (GET /uploads/{key}). */
export interface OssRecord {
  key: string;
  size: number;
  etag: string;
  mimeType: string;
  owner: string;
  createdAt: number;
  url?: string;
  [field: string]: unknown;
}

/**
 * Installs an Uppy post-processor that confirms each upload's record (GET /uploads/{key}),
 * attaches it as `file.response.body.record`, and marks a file without one as failed. Returns
 * a function that removes it.
 */
export declare function checkRecords(
  uppy: {
    getFile(id: string): any;
    setFileState(id: string, state: object): void;
    emit(event: string, ...args: unknown[]): void;
    addPostProcessor(fn: (fileIDs: string[]) => Promise<unknown>): void;
    removePostProcessor(fn: (fileIDs: string[]) => Promise<unknown>): boolean;
  },
  options: Pick<OssUppyOptions, 'signEndpoint' | 'getAuthorization' | 'fetch'>,
): () => boolean;
