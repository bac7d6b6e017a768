/**
 * Runs the studio server in a process of its own (for the load test and the benchmark, so
 * that the load generator does not share the server's event loop). Options come as one JSON
 * argument; the first stdout line is {"url": ...} once it listens. Stops on SIGTERM/SIGINT or
 * when stdin closes (the parent died).
 */
import { startStudio, type StudioOptions } from './server.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as StudioOptions;
const studio = await startStudio({ ...opts, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ url: studio.url })}\n`);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void studio.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
