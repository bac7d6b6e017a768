/**
 * The 503 for a model whose weights the server lacks. The loader's own message names the
 * folders it searched, which is right for the operator at a terminal but tells every web
 * client how the server's disks are laid out: the client gets the model, the missing file
 * names (relative, as in the registry) and how to install them; the log gets the full story.
 */
import { findModel } from '../models/registry.js';
import { modelStatus, type ResolveOptions } from '../models/resolve.js';
import { HttpError } from './http-error.js';

export async function modelUnavailable(
  name: string, cause: Error, resolveOpts: Omit<ResolveOptions, 'fetchImpl'>, logError: (line: string) => void,
): Promise<HttpError> {
  logError(`model ${name} is not available: ${cause.message}`);
  let files: { file: string; url?: string; state: string }[] = [];
  try {
    files = (await modelStatus(findModel(name), resolveOpts))
      .filter((f) => f.localPath === null || f.problem !== null)
      .map((f) => ({ file: f.file, url: f.url, state: f.localPath === null ? 'missing' : 'damaged' }));
  } catch {
    // the status is only a nicer message; the generic one below still says what to do
  }
  const what = files.length > 0 ? files.map((f) => `${f.file} is ${f.state}`).join(', ') : 'its weight files are missing or damaged';
  const canDownload = files.length > 0 && files.every((f) => f.url !== undefined) && resolveOpts.download !== true;
  return new HttpError(503, `model ${name} is not installed on this server (${what}); the server's operator can run \`adain models\` to see `
    + 'what is missing, put the files in the folder given to adain serve with --models-dir or $ADAIN_MODELS_DIR'
    + `${canDownload ? ', or restart adain serve with --download to fetch them' : ''}; the server log has the details`);
}
