// oss-uppy.js — Uppy 6 (`@uppy/aws-s3` 6.x) uploads through our sign function's grants.
// An ES module with no dependencies; types in oss-uppy.d.ts. Uppy itself is the app's own.
//
//   import Uppy from '@uppy/core';
//   import AwsS3 from '@uppy/aws-s3';
//   import { checkRecords, createOssUppyOptions } from './oss-uppy.js';
//   const sign = { signEndpoint: '', getAuthorization: () => token };
//   uppy.use(AwsS3, createOssUppyOptions(sign));
//   checkRecords(uppy, sign);   // each upload ends with its record, or is marked failed
//
// The plugin calls `signRequest({method, key, uploadId?, partNumber?})` once per S3 request and
// sends that request to the URL it gets back. Every call here becomes one authenticated
// `POST /s3/sign` (docs/uppy.md): the server decides the key, the type and the size, and answers
//   - a small file's PUT:      a presigned OSS PutObject URL, callback and type signed in;
//   - an upload part's PUT:    a presigned OSS UploadPart URL (no Content-Type: none is sent);
//   - create/list/complete/abort: a short-lived URL of the sign function itself, which does the
//     work with the server's own rules (ListParts checks, Complete with the callback) and answers
//     in the S3 XML the plugin parses.
// The plugin knows a file only by the key it proposes, so `generateObjectKey` hands it a
// throw-away name that we map back to the file; the server's key replaces it (`key` in the answer).

/** OSS's smallest part is 100 KiB, but @uppy/aws-s3 never makes parts under 5 MiB. */
export const UPPY_MIN_PART_BYTES = 5 * 1024 * 1024;
/** The sign function's default MULTIPART_PART_BYTES. */
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;

/** The sign function refused a request (HTTP status + our JSON error code). */
export class OssSignError extends Error {
  constructor(status, code, message) {
    super(`Upload refused (${status} ${code}): ${message}`);
    this.name = 'OssSignError';
    this.status = status;
    this.code = code;
    this.serverMessage = message;
  }
}

/**
 * Options for `uppy.use(AwsS3, …)`.
 * - `signEndpoint`: the sign function's base URL ('' for the page's own origin).
 * - `getAuthorization`: returns the caller's `Authorization` value ('Bearer <JWT>'), or a bare JWT.
 * - `path`: the folder inside the caller's space (DESIGN `path`), '' by default.
 * - `partSize`: must equal the sign function's MULTIPART_PART_BYTES (the server refuses a
 *   multipart create whose parts would be cut otherwise).
 * - `multipartThreshold`: files larger than this go multipart (default: `partSize`).
 * - `smallFiles`: 'put' (default: a presigned PUT) or 'form' (a PostObject form, whose policy
 *   OSS enforces — size included — before it stores anything; docs/uppy.md).
 */
export function createOssUppyOptions(options) {
  const {
    signEndpoint,
    getAuthorization,
    path = '',
    partSize = DEFAULT_PART_BYTES,
    multipartThreshold = partSize,
    smallFiles = 'put',
    fetch: fetchImpl = globalThis.fetch.bind(globalThis),
  } = options ?? {};
  if (typeof signEndpoint !== 'string') throw new TypeError('signEndpoint must be a string');
  if (smallFiles !== 'put' && smallFiles !== 'form') {
    throw new TypeError("smallFiles must be 'put' or 'form'");
  }
  if (typeof getAuthorization !== 'function') {
    throw new TypeError('getAuthorization must be a function');
  }
  if (!Number.isInteger(partSize) || partSize < UPPY_MIN_PART_BYTES) {
    throw new TypeError(`partSize must be a whole number, at least ${UPPY_MIN_PART_BYTES} bytes`);
  }
  const base = signEndpoint.replace(/\/+$/, '');
  const signUrl = `${base}/s3/sign`;
  /** The plugin's proposed key → the file it stands for (it passes nothing else). */
  const files = new Map();
  let counter = 0;

  async function post(body) {
    const auth = await getAuthorization();
    const response = await fetchImpl(signUrl, {
      method: 'POST',
      headers: {
        Authorization: /^bearer /i.test(auth) ? auth : `Bearer ${auth}`,
        'Content-Type': 'application/json',
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    let answer = null;
    try {
      answer = JSON.parse(text);
    } catch {
      // not our JSON: a proxy's page, reported below
    }
    if (!response.ok) {
      throw new OssSignError(
        response.status,
        answer?.code ?? 'HttpError',
        answer?.message ?? (text.slice(0, 200) || response.statusText),
      );
    }
    if (typeof answer?.url !== 'string' && typeof answer?.path !== 'string') {
      throw new OssSignError(response.status, 'BadAnswer', 'the sign function answered no URL');
    }
    return answer;
  }

  async function signRequest(request) {
    const body = { method: request.method, key: request.key };
    if (request.uploadId != null) body.uploadId = request.uploadId;
    if (request.partNumber != null) body.partNumber = request.partNumber;
    if (request.uploadId == null) {
      // A new upload (single PUT or multipart create): the server needs the file's facts.
      const file = files.get(request.key);
      if (!file) throw new TypeError(`no file for key ${request.key}: use generateObjectKey`);
      Object.assign(body, { path, filename: file.name, size: file.size, type: file.type });
      // The plugin cuts the parts before the server is asked: the server refuses a mismatch
      // (400) before it creates anything, rather than at Complete.
      if (request.method === 'POST') body.partSize = chunkSize(file.size);
      else if (smallFiles === 'form') body.form = true;
    }
    const answer = await post(body);
    // `url`: OSS's (presigned); `path`: the sign function's own (a capability URL).
    const signed = { url: answer.url ?? `${base}${answer.path}` };
    if (answer.key) signed.key = answer.key;
    if (answer.headers && Object.keys(answer.headers).length > 0) signed.headers = answer.headers;
    if (answer.fields) signed.fields = answer.fields; // a PostObject form: the plugin POSTs it
    return signed;
  }

  /** @uppy/aws-s3's part size for a file whose `getChunkSize` is `partSize`. */
  function chunkSize(size) {
    const chunk = Math.max(partSize, UPPY_MIN_PART_BYTES);
    return Math.ceil(size / chunk) > MAX_PARTS ? Math.ceil(size / MAX_PARTS) : chunk;
  }

  return {
    signRequest,
    shouldUseMultipart: (file) => (file.size ?? 0) > multipartThreshold,
    getChunkSize: () => partSize,
    generateObjectKey(file) {
      counter += 1;
      const key = `pending/${Date.now().toString(36)}-${counter}`;
      files.set(key, { name: file.name ?? '', size: file.size ?? 0, type: file.type ?? '' });
      return key;
    },
  };
}

/**
 * After each upload, confirm its record with `GET /uploads/{key}` (an Uppy post-processor),
 * and attach it as `file.response.body.record`. A file without a record is marked failed
 * (`upload-error` with an OssSignError): @uppy/aws-s3 reads no response body and counts every
 * 2xx as success, so a single PUT whose callback refused the object (`{"Status": "Rejected"}`,
 * or OSS's 203 CallbackFailed) would otherwise show as uploaded. Returns an uninstall function.
 */
export function checkRecords(uppy, options) {
  const {
    signEndpoint,
    getAuthorization,
    fetch: fetchImpl = globalThis.fetch.bind(globalThis),
  } = options ?? {};
  const base = String(signEndpoint ?? '').replace(/\/+$/, '');
  async function check(id) {
    const file = uppy.getFile(id);
    const key = file?.response?.body?.key;
    if (!file || file.error || !key) return;
    const auth = await getAuthorization();
    const path = key.split('/').map(encodeURIComponent).join('/');
    const response = await fetchImpl(`${base}/uploads/${path}`, {
      headers: { Authorization: /^bearer /i.test(auth) ? auth : `Bearer ${auth}` },
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      const body = { ...file.response.body, record: answer };
      uppy.setFileState(id, { response: { ...file.response, body } });
    } else {
      const message =
        response.status === 404
          ? 'the file reached storage but was not recorded (refused, or its callback failed)'
          : (answer.message ?? response.statusText);
      const error = new OssSignError(response.status, answer.code ?? 'NotRecorded', message);
      uppy.emit('upload-error', file, error);
    }
    uppy.emit('postprocess-complete', uppy.getFile(id));
  }
  const processor = (fileIDs) => Promise.all(fileIDs.map(check));
  uppy.addPostProcessor(processor);
  return () => uppy.removePostProcessor(processor);
}
