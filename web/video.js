// A video as the content: the page does not stylise clips itself (onnxruntime-web does images
// and the webcam); the server does, through POST /api/stylize-video. Its answer comes only
// when the whole clip is done, so the request names its job (?job=<id>) and the page polls
// GET /api/video-jobs/<id> for the progress bar meanwhile. Cancel (or choosing another
// content) aborts the request, which stops the server's job.

const $ = (sel) => document.querySelector(sel);

const VIDEO_NAME = /\.(mp4|m4v|mov|webm|mkv|avi|mpe?g|ts|flv|ogv|3gp|wmv)$/i;
const POLL_MS = 500;

/** Whether a chosen or dropped file is a clip (GIFs stay images, as in the rest of the page). */
export function isVideoFile(file) {
  return (file.type ?? '').startsWith('video/') || VIDEO_NAME.test(file.name ?? '');
}

function jobId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; a page opened over plain http from another machine has none
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function sizeText(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} kB`;
}

/**
 * The video half of image mode.
 * - `request()` gives what the image pipeline would use: { styles: [{ blob, name, weight }], alpha, preserveColor, model }
 * - `onActivate()` runs when a clip becomes the content (the image pipeline should stop)
 * - `showError(err)` shows a failure
 */
export function createVideoMode({ request, onActivate, showError }) {
  let content = null;
  let job = null; // { id, controller, started }
  let resultUrl = null;

  const view = $('#video-view');
  const progress = $('#video-progress');
  const setText = (text) => { $('#video-status').textContent = text; };
  const setState = (s) => { view.dataset.state = s; };

  function showResult(blob, format) {
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    resultUrl = URL.createObjectURL(blob);
    const gif = format === 'gif';
    const player = $('#video-result'), still = $('#video-gif');
    player.hidden = gif;
    still.hidden = !gif;
    if (gif) {
      player.removeAttribute('src');
      still.src = resultUrl;
    } else {
      player.src = resultUrl;
      void player.play().catch(() => {}); // autoplay may be refused; the controls are there
    }
    const a = $('#video-download');
    a.href = resultUrl;
    a.download = `${content.name.replace(/\.[^.]+$/, '')}_stylized.${format}`;
    a.textContent = `Download ${a.download} (${sizeText(blob.size)})`;
    a.hidden = false;
  }

  function showProgress(s) {
    if (s.state === 'uploading') {
      progress.removeAttribute('value');
      setText(`Uploading… ${sizeText(s.bytes_received)} of ${sizeText(content.size)}`);
    } else if (s.state === 'queued') {
      progress.removeAttribute('value');
      setText('Waiting for the server (other stylisations are ahead)…');
    } else if (s.state === 'running') {
      const total = Math.max(s.frames_total, s.frames_done, 1);
      progress.max = total;
      progress.value = s.frames_done;
      progress.dataset.done = String(s.frames_done);
      progress.dataset.total = String(total);
      setText(s.frames_done === 0 ? 'Stylising the first frame…'
        : `Frame ${s.frames_done}/${total} · ${s.fps.toFixed(1)} frames/s · about ${Math.ceil((total - s.frames_done) / Math.max(s.fps, 0.01))} s left`);
    }
  }

  async function poll(current) {
    for (;;) {
      // first wait: the server knows the job only once it has the POST's headers (404 before)
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (job !== current) return;
      try {
        const r = await fetch(`/api/video-jobs/${current.id}`, { cache: 'no-store' });
        if (!r.ok) continue;
        const s = await r.json();
        // asked again after the body: the job may have ended (done, cancelled) while it was read
        if (job === current) showProgress(s);
      } catch {
        // a failed poll only delays the bar; the POST says how the job ended
      }
    }
  }

  async function run() {
    if (!content) return;
    const req = request();
    if (req.styles.length === 0) throw new Error('add a style image first (upload, drop, or + Style in the gallery)');
    cancel();
    const current = { id: jobId(), controller: new AbortController(), started: performance.now() };
    job = current;
    const format = $('#video-format').value;
    const fd = new FormData();
    fd.append('content', content, content.name);
    for (const s of req.styles) fd.append('style', s.blob, s.name);
    fd.append('alpha', String(req.alpha));
    fd.append('style_weights', req.styles.map((s) => s.weight).join(','));
    fd.append('preserve_color', String(req.preserveColor));
    if (req.model) fd.append('model', req.model);
    fd.append('format', format);
    setState('running');
    progress.hidden = false;
    progress.removeAttribute('value');
    progress.dataset.done = '0';
    delete progress.dataset.total; // the last clip's, until the first poll gives this one's
    $('#video-run').disabled = true;
    $('#video-cancel').hidden = false;
    setText('Uploading…');
    void poll(current);
    try {
      const r = await fetch(`/api/stylize-video?job=${current.id}`, { method: 'POST', body: fd, signal: current.controller.signal });
      if (!r.ok) {
        let msg = `HTTP ${r.status}`;
        try { msg = (await r.json()).error; } catch { /* not JSON */ }
        throw new Error(`the server could not stylise the video: ${msg}`);
      }
      const blob = await r.blob();
      if (job !== current) return;
      const frames = r.headers.get('X-Video-Frames');
      progress.max = 1;
      progress.value = 1;
      progress.dataset.done = progress.dataset.total = frames ?? '';
      showResult(blob, format);
      setState('done');
      setText(`${frames} frames, ${r.headers.get('X-Video-Size')}, stylised on the server in ${((performance.now() - current.started) / 1000).toFixed(1)} s.`);
    } catch (err) {
      if (job !== current) return; // cancelled or replaced: nothing to report
      setState('error');
      setText('');
      progress.hidden = true;
      showError(err);
    } finally {
      if (job === current) {
        job = null;
        $('#video-run').disabled = false;
        $('#video-cancel').hidden = true;
      }
    }
  }

  /** Stops the job in progress, if any: aborting the POST makes the server stop it too. */
  function cancel() {
    if (!job) return;
    const current = job;
    job = null;
    current.controller.abort();
    progress.hidden = true;
    setState('idle');
    setText('Cancelled.');
    $('#video-run').disabled = false;
    $('#video-cancel').hidden = true;
  }

  function setContent(file) {
    cancel();
    content = file;
    document.body.dataset.content = 'video';
    view.hidden = false;
    setState('idle');
    setText('');
    progress.hidden = true;
    $('#video-download').hidden = true;
    $('#video-result').hidden = true;
    $('#video-gif').hidden = true;
    $('#content-thumb').hidden = true;
    $('#content-name').textContent = `${file.name} (video, ${sizeText(file.size)}): stylised on the server`;
    onActivate();
  }

  /** Back to an image content: the clip's job stops, the image pipeline takes over. */
  function deactivate() {
    if (!content) return;
    cancel();
    content = null;
    document.body.dataset.content = 'image';
    view.hidden = true;
  }

  $('#video-run').addEventListener('click', () => void run().catch(showError));
  $('#video-cancel').addEventListener('click', cancel);

  return { setContent, deactivate, run, cancel, get active() { return content !== null; } };
}
