// Runs once before every test file. Tests that spawn the `tollgate` binary (cli/, the scenarios)
// run the build output, and the browser tests load the built web app, so build both here once:
// they never run a stale copy, and the suite never pays for two builds.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export default async function setup(): Promise<void> {
  const root = new URL('..', import.meta.url).pathname;
  await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: root });
}
