// Demo page: a dev token, uploads with a progress bar each, and the list of my uploads (thumbnails
// and files from presigned URLs, delete).
import { createUploader, usesMultipart } from './oss-upload.js';

const $ = (id) => document.getElementById(id);
const session = { token: null, user: null };
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
      // Our callback looked at what was stored, refused it and deleted it: say why.
      return `Refused and deleted: ${error.serverMessage} (${error.code}).`;
    case 'rejected':
      return `Storage refused the file: ${error.serverMessage} (${error.code}).`;
    case 'not-recorded':
      return `Stored but not recorded (${error.code}: ${error.serverMessage}); it will be reconciled later.`;
    case 'network':
      return 'Network failure — check the connection and try again.';
    case 'part-failed':
      return `Part ${error.partNumber} could not be sent after ${error.attempts} tries (${error.code}): choose the same file again to resume.`;
    case 'integrity':
      return `Stored, but the stored bytes differ from the file (CRC-64 ${error.actual}, expected ${error.expected}): delete it and upload again.`;
    case 'file':
      return 'The file could not be read: was it moved or changed? Choose it again.';
    case 'api':
      if (error.status === 404) return 'It is gone (deleted, or not yours).';
      return `${error.serverMessage} (${error.code}).`;
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

// The bucket is private: every record from the sign function carries presigned URLs (`url`,
// and `thumbnailUrl` for images) that expire; `fresh` re-reads a record whose URLs are about to.
const api = uploaders.exact;

/** An <img> for the record's thumbnail; when a URL has expired it is refreshed once and retried. */
function thumbnail(record) {
  const img = document.createElement('img');
  img.className = 'thumb';
  img.alt = '';
  if (record && record.thumbnailUrl) {
    img.alt = `Preview of ${record.fileName || record.key}`;
    let retried = false;
    img.addEventListener('error', async () => {
      if (retried) {
        img.alt = 'No preview';
        return;
      }
      retried = true;
      try {
        img.src = (await api.fresh(record, { margin: Infinity })).thumbnailUrl;
      } catch {
        img.alt = 'No preview';
      }
    });
    api.fresh(record).then(
      (current) => {
        img.src = current.thumbnailUrl;
      },
      () => {
        img.alt = 'No preview';
      },
    );
  }
  return img;
}

/** Open the file in a new tab, with a URL that is still valid (refreshed first if needed). */
async function openFile(record, link) {
  try {
    const current = await api.fresh(record);
    link.href = current.url;
    window.open(current.url, '_blank', 'noopener');
  } catch (error) {
    complain(`Could not open ${record.key}: ${describe(error)}`);
  }
}

async function deleteFile(record, item) {
  const name = record.fileName || record.key;
  item.dataset.state = 'deleting';
  try {
    await api.deleteUpload(record.key);
  } catch (error) {
    item.dataset.state = '';
    complain(`Could not delete ${name}: ${describe(error)}`);
    return;
  }
  const next = item.nextElementSibling || item.previousElementSibling;
  item.remove();
  $('empty').hidden = $('uploads').children.length > 0;
  say(`Deleted ${name}.`);
  const focus = next && next.querySelector('button, a');
  (focus || $('refresh')).focus(); // keyboard users keep their place in the list
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
  const threshold = Number($('multipart-threshold').value) * 1024 * 1024;
  const jobs = Array.from(files, (file) => uploadWithRow(uploader, file, path, threshold));
  say(`Uploading ${jobs.length} file${jobs.length === 1 ? '' : 's'}…`);
  Promise.allSettled(jobs).then(async (results) => {
    const ok = results.filter((r) => r.status === 'fulfilled' && r.value).length;
    say(`${ok} of ${results.length} uploaded.`);
    await Promise.all([refreshList(), refreshQuota()]);
  });
}

async function uploadWithRow(uploader, file, path, threshold) {
  // Large files go in parts (resumable); the rest in one PostObject form.
  const multipart = usesMultipart(file.size, Number.isFinite(threshold) ? threshold : undefined);
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
  const note = document.createElement('span');
  note.className = 'note';
  note.setAttribute('role', 'status');
  const details = document.createElement('div');
  details.append(name, progress, state, note);
  if (multipart) row.dataset.multipart = 'true';
  const placeholder = thumbnail(null);
  row.append(placeholder, details, cancel);
  $('queue').append(row);

  const controller = new AbortController();
  cancel.addEventListener('click', () => controller.abort());
  const onProgress = ({ fraction, partsDone, partCount }) => {
    const percent = Math.round(fraction * 100);
    progress.value = percent;
    const parts = partCount ? ` · ${partsDone} of ${partCount} parts` : '';
    state.textContent = percent < 100 ? `${percent}%${parts}` : 'Sent; waiting for the record…';
  };
  const onResume = ({ partsDone, partCount }) => {
    row.dataset.resumed = String(partsDone);
    note.textContent = `Resuming an earlier upload (${partsDone} of ${partCount} parts already there).`;
  };
  try {
    const record = await uploader.upload(file, {
      path,
      onProgress,
      onResume,
      multipart,
      signal: controller.signal,
    });
    row.dataset.state = 'done';
    row.dataset.key = record.key;
    state.className = 'state done';
    state.textContent = `Uploaded as ${record.key}`;
    api.getUpload(record.key).then(
      (listed) => placeholder.replaceWith(thumbnail(listed)),
      () => {}, // not recorded yet: the list shows it once it is
    );
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
  const label = record.fileName || record.key;
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = label;
  const meta = document.createElement('span');
  meta.className = 'muted';
  const when = new Date(record.createdAt).toLocaleString();
  meta.textContent = `${formatSize(record.size)} · ${record.mimeType || 'unknown type'} · ${when}`;
  const details = document.createElement('div');
  details.append(name, document.createElement('br'), meta);
  const actions = document.createElement('span');
  actions.className = 'actions';
  const open = document.createElement('a');
  open.className = 'button secondary';
  open.textContent = 'Open';
  open.href = record.url || '#';
  open.target = '_blank';
  open.rel = 'noopener';
  open.setAttribute('aria-label', `Open ${label}`);
  open.addEventListener('click', (event) => {
    event.preventDefault();
    openFile(record, open);
  });
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'secondary';
  remove.textContent = 'Delete';
  remove.setAttribute('aria-label', `Delete ${label}`);
  remove.addEventListener('click', () => deleteFile(record, item));
  actions.append(open, remove);
  item.append(thumbnail(record), details, actions);
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
