// Drives the legacy UploadService exactly as a frontend would.
import { UploadService } from './upload-service.js';

const service = new UploadService('');
const form = document.getElementById('legacy');
const result = document.getElementById('result');
const progress = document.getElementById('progress');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = document.getElementById('file').files[0];
  const path = document.getElementById('path').value;
  progress.value = 0;
  result.dataset.state = 'uploading';
  result.textContent = `Uploading ${file.name}…`;
  const observe = (observer) =>
    observer.addEventListener('progress', (e) => {
      progress.value = e.total ? Math.round((e.loaded / e.total) * 100) : 0;
    });
  try {
    const key = await service.upload(file, path, observe);
    result.dataset.state = 'done';
    result.dataset.key = key;
    result.textContent = `Status OK — stored as ${key}`;
  } catch (error) {
    result.dataset.state = 'failed';
    result.textContent = `Upload failed: ${error.message}`;
  }
});
document.documentElement.dataset.ready = 'true';
