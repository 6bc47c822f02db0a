// Demo page: a dev token, uploads with a progress bar each, and the list of my uploads.
import { createUploader } from './oss-upload.js';

const $ = (id) => document.getElementById(id);
const session = { token: null, user: null, host: null };
const getToken = () => session.token;
const uploaders = {
  exact: createUploader({ signatureUrl: '/signature', getToken, exactKeys: true }),
  prefix: createUploader({ signatureUrl: '/signature', getToken }),
};

// --- messages --------------------------------------------------------------------------------

function say(text) {
  $('status').textContent = text;
}

function complain(text) {
  $('error').textContent = text;
}

/** Codes of a callback's `{"Status": "Rejected"}` answer (DESIGN "Verification"). */
const CHECKED_BY_SERVER = new Set(['ContentRejected', 'QuotaExceeded']);

/** One sentence a person can act on, for each kind of failure the client tells apart. */
function describe(error) {
  switch (error.kind) {
    case 'aborted':
      return 'Cancelled — nothing was stored.';
    case 'grant':
      if (error.status === 401) return 'Not signed in, or the token expired: get a new dev token.';
      return `Upload not allowed: ${error.serverMessage} (${error.code}).`;
    case 'quota':
      return error.stage === 'upload'
        ? `Over your storage quota: the file was removed (${error.serverMessage}).`
        : `Over your storage quota: ${error.serverMessage}. Delete files or wait for unused grants to expire.`;
    case 'rate-limited':
      return `Too many uploads in a minute: try again in ${error.retryAfter} s (at ${new Date(
        error.retryAt,
      ).toLocaleTimeString()}).`;
    case 'refused':
      return `The server refused the file (${error.code}: ${error.serverMessage}); it was not kept.`;
    case 'rejected':
      if (CHECKED_BY_SERVER.has(error.code)) {
        // Our callback looked at what was stored, refused it and deleted it: say why.
        return `Refused and deleted: ${error.serverMessage} (${error.code}).`;
      }
      return `Storage refused the file: ${error.serverMessage} (${error.code}).`;
    case 'not-recorded':
      return `Stored but not recorded (${error.code}: ${error.serverMessage}); it will be reconciled later.`;
    case 'network':
      return 'Network failure — check the connection and try again.';
    default:
      return `Unexpected error: ${error.message}`;
  }
}

/** "used of limit" (reserved in brackets) for bytes or files; "no limit" when there is none. */
function describeQuota(quota) {
  const part = (what, format) => {
    const { used, reserved, limit } = quota[what];
    const held = reserved ? ` (+${format(reserved)} reserved)` : '';
    return limit === null || limit === undefined
      ? `${format(used)}${held}, no limit`
      : `${format(used)}${held} of ${format(limit)}`;
  };
  const files = (n) => `${n} file${n === 1 ? '' : 's'}`;
  return `Quota: ${part('bytes', formatSize)} · ${part('files', files)}`;
}

async function refreshQuota() {
  if (!session.token) return;
  try {
    $('quota').textContent = describeQuota(await uploaders.exact.quota());
  } catch (error) {
    $('quota').textContent = `Quota unknown: ${error.message}`;
  }
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// --- sign in ---------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const user = $('user').value.trim();
  complain('');
  try {
    const response = await fetch(`/dev/token?user=${encodeURIComponent(user)}`);
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.token) {
      throw new Error(body.message || `the dev server answered ${response.status}`);
    }
    session.token = body.token;
    session.user = user;
  } catch (error) {
    complain(`Could not get a dev token: ${error.message}`);
    return;
  }
  $('whoami').textContent = `Signed in as ${user}.`;
  $('files').disabled = false;
  $('refresh').disabled = false;
  say(`Signed in as ${user}.`);
  await Promise.all([refreshList(), refreshQuota()]);
}

// --- where objects can be read back ----------------------------------------------------------

/** The upload host (from a grant) serves GET /<key>; a record's `url` wins when present. */
async function objectUrl(record) {
  if (record.url) return record.url;
  if (!session.host) {
    const grant = await uploaders.prefix.grant('');
    session.host = grant.host.replace(/\/$/, '');
  }
  return `${session.host}/${record.key.split('/').map(encodeURIComponent).join('/')}`;
}

function thumbnail(record) {
  const img = document.createElement('img');
  img.className = 'thumb';
  img.alt = '';
  if (record && String(record.mimeType || '').startsWith('image/')) {
    img.alt = `Preview of ${record.key}`;
    objectUrl(record).then(
      (url) => {
        img.src = url;
      },
      () => {
        img.alt = 'No preview';
      },
    );
  }
  return img;
}

// --- uploads ---------------------------------------------------------------------------------

function startUploads(files) {
  if (!session.token) {
    complain('Get a dev token first.');
    return;
  }
  complain('');
  const uploader = $('exact').checked ? uploaders.exact : uploaders.prefix;
  const path = $('path').value.trim();
  const jobs = Array.from(files, (file) => uploadWithRow(uploader, file, path));
  say(`Uploading ${jobs.length} file${jobs.length === 1 ? '' : 's'}…`);
  Promise.allSettled(jobs).then(async (results) => {
    const ok = results.filter((r) => r.status === 'fulfilled' && r.value).length;
    say(`${ok} of ${results.length} uploaded.`);
    await Promise.all([refreshList(), refreshQuota()]);
  });
}

async function uploadWithRow(uploader, file, path) {
  const row = document.createElement('li');
  row.dataset.name = file.name;
  row.dataset.state = 'uploading';
  const label = `${file.name} (${formatSize(file.size)})`;
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = label;
  const progress = document.createElement('progress');
  progress.max = 100;
  progress.value = 0;
  progress.setAttribute('aria-label', `Upload progress of ${file.name}`);
  const state = document.createElement('span');
  state.className = 'state';
  state.textContent = 'Waiting…';
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'secondary';
  cancel.textContent = 'Cancel';
  cancel.setAttribute('aria-label', `Cancel upload of ${file.name}`);
  const details = document.createElement('div');
  details.append(name, progress, state);
  const placeholder = thumbnail(null);
  row.append(placeholder, details, cancel);
  $('queue').append(row);

  const controller = new AbortController();
  cancel.addEventListener('click', () => controller.abort());
  const onProgress = ({ fraction }) => {
    const percent = Math.round(fraction * 100);
    progress.value = percent;
    state.textContent = percent < 100 ? `${percent}%` : 'Sent; waiting for the record…';
  };
  try {
    const record = await uploader.upload(file, { path, onProgress, signal: controller.signal });
    row.dataset.state = 'done';
    row.dataset.key = record.key;
    state.className = 'state done';
    state.textContent = `Uploaded as ${record.key}`;
    placeholder.replaceWith(thumbnail(record));
    return record;
  } catch (error) {
    row.dataset.state = error.kind === 'aborted' ? 'cancelled' : 'failed';
    row.dataset.kind = error.kind;
    state.className = 'state failed';
    state.textContent = describe(error);
    say(`${file.name}: ${describe(error)}`);
    return null;
  } finally {
    cancel.remove();
  }
}

// --- my uploads ------------------------------------------------------------------------------

async function refreshList() {
  if (!session.token) return;
  let body;
  try {
    const response = await fetch('/uploads?limit=50', {
      headers: { Authorization: `Bearer ${session.token}`, Accept: 'application/json' },
    });
    body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(`${body.code || response.status}: ${body.message || ''}`);
  } catch (error) {
    complain(`Could not list uploads: ${error.message}`);
    return;
  }
  const list = $('uploads');
  list.replaceChildren(...body.items.map(uploadItem));
  $('empty').hidden = body.items.length > 0;
}

function uploadItem(record) {
  const item = document.createElement('li');
  item.dataset.key = record.key;
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = record.key;
  const meta = document.createElement('span');
  meta.className = 'muted';
  const when = new Date(record.createdAt).toLocaleString();
  meta.textContent = `${formatSize(record.size)} · ${record.mimeType || 'unknown type'} · ${when}`;
  const details = document.createElement('div');
  details.append(name, document.createElement('br'), meta);
  item.append(thumbnail(record), details, document.createElement('span'));
  return item;
}

// --- wiring ----------------------------------------------------------------------------------

$('signin').addEventListener('submit', signIn);
$('refresh').addEventListener('click', refreshList);
$('files').addEventListener('change', (event) => {
  startUploads(event.target.files);
  event.target.value = '';
});

const zone = $('dropzone');
zone.addEventListener('dragover', (event) => {
  event.preventDefault();
  zone.classList.add('over');
});
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', (event) => {
  event.preventDefault();
  zone.classList.remove('over');
  if (event.dataTransfer && event.dataTransfer.files.length) startUploads(event.dataTransfer.files);
});
document.documentElement.dataset.ready = 'true';
