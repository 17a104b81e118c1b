// Create a small file exactly once, whole or not at all, even with several processes racing: the content is
// written and fsynced to a temp file, then hard-linked into place (a link never overwrites), and the directory
// entry is fsynced. Readers never see a half-written file; the loser of a race learns it lost.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** Resolves true if this call created `file`, false if it already existed (the existing one wins). */
export async function createFileOnce(file: string, content: string, mode = 0o600): Promise<boolean> {
  const dir = path.dirname(file);
  // Unique per call, not just per process and millisecond: two calls in one process at once must not collide.
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomUUID()}.tmp`);
  const fh = await fs.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    await fs.rm(tmp, { force: true });
  }
  await syncDir(dir);
  return true;
}

// Makes the new directory entry durable; not every platform can open a directory, which is fine.
async function syncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch {
    /* best effort */
  } finally {
    await fh?.close();
  }
}
