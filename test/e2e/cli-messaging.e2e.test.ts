// The README's two-agent walk-through, through the CLI a person uses: send-message on A, subscribe-inbox (live)
// and get-inbox/ack on B, outbox and replay on A.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, runCli } from '../support/daemon-process.ts';

const ROOT = resolve(import.meta.dirname, '../..');

describe('messaging through the CLI', () => {
  const a = new DaemonProcess();
  const b = new DaemonProcess();
  beforeAll(async () => {
    await Promise.all([a.start(), b.start()]);
    const connect = await runCli(['connect', '--data-dir', a.dataDir, b.tcpAddr]);
    expect(connect.code, connect.stderr).toBe(0);
  });
  afterAll(async () => {
    await Promise.all([a.dispose(), b.dispose()]);
  });

  it('subscribe-inbox prints a message live; get-inbox, ack, outbox and replay show it', async () => {
    // A live subscriber on B, one JSON object per line.
    const sub = spawn(process.execPath, ['bin/run.ts', 'subscribe-inbox', '--unread', '--json', '--data-dir', b.dataDir], { cwd: ROOT });
    const lines = createInterface({ input: sub.stdout });
    const first = new Promise<Record<string, unknown>>((ok, fail) => {
      lines.once('line', (l) => ok(JSON.parse(l)));
      sub.once('exit', (code) => fail(new Error(`subscribe-inbox exited ${code}`)));
    });
    try {
      // --unread sends what is already there first, so a message that beats the subscription is not missed.
      const r = await runCli(['send-message', '--json', '--data-dir', a.dataDir, '--to', b.did, '--message', 'Hey, available for a task?']);
      expect(r.code, r.stderr).toBe(0);
      const sent = JSON.parse(r.stdout) as { messageId: string; queued: boolean };
      const got = await first;
      expect(got).toMatchObject({ id: sent.messageId, from: a.did, text: 'Hey, available for a task?' });

      const inbox = await runCli(['get-inbox', '--unread', '--data-dir', b.dataDir]);
      expect(inbox.stdout).toContain('1 unread message');
      expect(inbox.stdout).toContain(`${sent.messageId}  from ${a.did}  "Hey, available for a task?"`);
      expect((await runCli(['ack', sent.messageId, '--data-dir', b.dataDir])).code).toBe(0);
      expect((await runCli(['get-inbox', '--unread', '--data-dir', b.dataDir])).stdout).toContain('0 unread messages');

      const outbox = await runCli(['outbox', '--json', '--data-dir', a.dataDir, '--id', sent.messageId]);
      expect(JSON.parse(outbox.stdout)).toMatchObject({ entries: [{ id: sent.messageId, state: 'delivered' }] });
      const replay = await runCli(['replay', `outbox/${sent.messageId}`, '--data-dir', a.dataDir]);
      expect(replay.code, replay.stderr).toBe(0);
      expect(replay.stdout).toMatch(/#1 +xstate\.init .*pending\.queued/);
      expect(replay.stdout).toMatch(/SEND .*pending\.sending .*deliver/);
      expect(replay.stdout).toMatch(/DELIVERED .*delivered/);
    } finally {
      sub.kill('SIGINT');
    }
  });
});
