import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../../../scripts/tools.sh', import.meta.url));

/**
 * The real kubectl and helm, installed by scripts/tools.sh into the devstack cache. A machine
 * that cannot get them fails here with the reason: these tests must not pass by skipping.
 */
export async function tools(): Promise<{ kubectl: string; helm: string }> {
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [script], { timeout: 300_000 }));
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`kubectl and helm are needed and could not be installed by scripts/tools.sh (CI runs it first): ${e.stderr || e.message}`, {
      cause: error,
    });
  }
  const found = Object.fromEntries(stdout.trim().split('\n').map((line) => line.split('=', 2) as [string, string]));
  if (!found.kubectl || !found.helm) throw new Error(`scripts/tools.sh printed no tool paths: ${stdout}`);
  return { kubectl: found.kubectl, helm: found.helm };
}
