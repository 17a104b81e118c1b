// Agent Cards and names through the CLI, between two real daemons: B advertises text-generation (moltbook.toml
// [agent]), A finds it with find-agents and reads its card; B claims "swift-falcon", A is refused the same name with
// the holder's DID, resolves it to B, and may claim it once B has released it; withdraw-card takes B out of the
// search; bad names fail locally with exit 2. One pair of daemons for the whole file; the tests run in order.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, runCli, runCliUntil, type CliResult as Result } from '../support/daemon-process.ts';

// No sleeps: each try is itself a bounded wait (find-agents' --timeout), and a provider record only needs to spread
// between two daemons.
const until = (args: string[], done: (r: Result) => boolean, what: string, ms = 20_000) => runCliUntil(args, done, what, ms);

const CAP = 'a2a:v1:cap:text-generation';
const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';
const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);


interface CardJson { did: string; name: string; capabilities: string[]; signature: string }
const agentsIn = (r: Result): CardJson[] => (r.code === 0 ? (JSON.parse(r.stdout) as { agents: CardJson[] }).agents : []);

describe('discovery and names through the CLI', () => {
  const a = new DaemonProcess();
  const b = new DaemonProcess();
  const at = (d: DaemonProcess) => ['--data-dir', d.dataDir];
  const find = (d: DaemonProcess, ...more: string[]) => ['find-agents', '--capability', 'text-generation', '--timeout', '2s', ...more, ...at(d)];

  beforeAll(async () => {
    // B's daemon runs in its data dir, so this is the moltbook.toml it reads.
    writeFileSync(join(b.dataDir, 'moltbook.toml'), '[agent]\ndescription = "Summaries on demand"\ncapabilities = ["text-generation"]\n');
    await Promise.all([a.start(), b.start()]);
    const connect = await runCli(['connect', ...at(a), b.tcpAddr]);
    expect(connect.code, connect.stderr).toBe(0);
  });
  afterAll(async () => {
    await Promise.all([a.dispose(), b.dispose()]);
  });

  it('find-agents from A lists B, streamed and as --json; get-agent-card shows its card', async () => {
    const found = await until(find(a, '--json'), (r) => agentsIn(r).some((c) => c.did === b.did), 'B in find-agents from A');
    const card = agentsIn(found).find((c) => c.did === b.did)!;
    expect(JSON.parse(found.stdout).capability).toBe(CAP);
    expect(card.capabilities).toEqual([CAP]);
    expect(card.signature).toMatch(/^[0-9a-f]{128}$/);
    expect(found.stderr).toBe(`# searching DHT for ${CAP}...\n`);

    const [human, get, getJson] = await Promise.all([
      runCli(find(a)),
      runCli(['get-agent-card', b.did, ...at(a)]),
      runCli(['get-agent-card', '--json', '--did', b.did, ...at(a)]),
    ]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toBe(`# searching DHT for ${CAP}...\n`);
    expect(human.stdout).toBe(`${b.did}  (unnamed)         text-generation\n# 1 agent found\n`);

    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^DID +${b.did}\\nName +\\(unnamed\\)\\nDescription +Summaries on demand\\nCapabilities +text-generation\\n`));
    expect(get.stdout).toMatch(/^Addresses +\/ip4\//m);
    expect(get.stdout).toMatch(new RegExp(`^Issued +${ISO}\\nExpires +${ISO}\\nSeq +\\d+\\n$`, 'm'));
    expect(JSON.parse(getJson.stdout)).toMatchObject({ did: b.did, description: 'Summaries on demand', capabilities: [CAP] });

    // Our own card, seen from B, is marked.
    const own = await runCli(['get-agent-card', b.did, ...at(b)]);
    expect(own.stdout).toMatch(new RegExp(`^DID +${b.did} \\(you\\)$`, 'm'));
  });

  let expires = '';

  it('name claim on B; the same claim from A is refused with the holder; resolve and list', async () => {
    const claimed = await runCli(['name', 'claim', 'swift', 'falcon', ...at(b)]);
    expect(claimed.code, claimed.stderr).toBe(0);
    const m = claimed.stdout.match(new RegExp(`^Name     swift-falcon\\nDID      ${b.did} \\(you\\)\\nExpires  (${ISO}) \\(auto-renewed\\)\\n$`));
    expect(m, claimed.stdout).not.toBeNull();
    expires = m![1]!;
    expect(Date.parse(expires) - Date.now()).toBeGreaterThan(23 * 3600_000);

    // B's claim returned once published: A sees it at once.
    const [taken, resolvedA, resolvedB, listB, listJson, listA] = await Promise.all([
      runCli(['name', 'claim', 'swift-falcon', ...at(a)]),
      runCli(['name', 'resolve', 'swift-falcon', ...at(a)]),
      runCli(['name', 'resolve', 'swift-falcon', ...at(b)]),
      runCli(['name', 'list', ...at(b)]),
      runCli(['name', 'list', '--json', ...at(b)]),
      runCli(['name', 'list', ...at(a)]),
    ]);
    expect([taken.code, taken.stdout, taken.stderr]).toEqual([1, '', `error: name "swift-falcon" already claimed by ${b.did} (expires ${expires})\n`]);
    expect(resolvedA.stdout, resolvedA.stderr).toBe(`Name     swift-falcon\nDID      ${b.did}\nExpires  ${expires}\n`);
    expect(resolvedB.stdout, resolvedB.stderr).toBe(`Name     swift-falcon\nDID      ${b.did} (you)\nExpires  ${expires} (auto-renewed)\n`);
    expect(listB.stdout).toMatch(new RegExp(`^NAME +EXPIRES +SEQ\\nswift-falcon  ${expires} \\(auto-renewed\\)  \\d+\\n$`));
    expect(JSON.parse(listJson.stdout).names).toEqual([expect.objectContaining({ name: 'swift-falcon', did: b.did, autoRenew: true, expiresAt: expires })]);
    expect(listA.stdout).toBe('no names claimed\n');
  });

  it('publish-card puts the held name on B\'s card; A finds B under it; a name not held is refused', async () => {
    const published = await runCli(['publish-card', '--name', 'swift-falcon', ...at(b)]);
    expect(published.code, published.stderr).toBe(0);
    expect(published.stdout).toMatch(new RegExp(`^DID +${b.did} \\(you\\)\\nName +swift-falcon\\nDescription +Summaries on demand\\nCapabilities +text-generation\\n`));

    const found = await until(find(a), (r) => r.stdout.includes(`${b.did}  swift-falcon      text-generation\n`), 'B\'s named card from A');
    expect(found.stdout.endsWith('# 1 agent found\n')).toBe(true);

    const notHeld = await runCli(['publish-card', '--name', 'bright-harbor', ...at(a)]);
    expect([notHeld.code, notHeld.stdout]).toEqual([1, '']);
    expect(notHeld.stderr).toMatch(/^error: .*bright-harbor/);
    noStackTrace(notHeld.stderr);
  });

  it('name release on B frees the name for A', async () => {
    const released = await runCli(['name', 'release', 'swift-falcon', ...at(b)]);
    expect([released.code, released.stdout], released.stderr).toEqual([0, 'released swift-falcon\n']);
    expect((await runCli(['name', 'list', ...at(b)])).stdout).toBe('no names claimed\n');

    const claimed = await runCli(['name', 'claim', 'swift-falcon', ...at(a)]);
    expect(claimed.code, claimed.stderr).toBe(0);
    expect(claimed.stdout).toMatch(new RegExp(`^Name     swift-falcon\\nDID      ${a.did} \\(you\\)\\nExpires  ${ISO} \\(auto-renewed\\)\\n$`));
    const resolved = await runCli(['name', 'resolve', 'swift-falcon', ...at(b)]);
    expect(resolved.stdout, resolved.stderr).toMatch(new RegExp(`^Name     swift-falcon\\nDID      ${a.did}\\n`));
  });

  it('withdraw-card takes B out of the search (exit 0 with none found)', async () => {
    const withdrawn = await runCli(['withdraw-card', ...at(b)]);
    expect([withdrawn.code, withdrawn.stdout], withdrawn.stderr).toEqual([0, 'card withdrawn: capabilities no longer advertised\n']);
    const none = await until(find(a), (r) => r.code === 0 && !r.stdout.includes(b.did), 'B gone from find-agents');
    expect(none.stdout).toBe('# no agents found\n');
    expect(JSON.parse((await runCli(find(a, '--json'))).stdout)).toEqual({ capability: CAP, agents: [] });
  });

  it('bad names fail before the daemon is asked (exit 2); an unclaimed name is NOT_FOUND (exit 1)', async () => {
    const [bad, one, unclaimed] = await Promise.all([
      runCli(['name', 'claim', 'Swift', 'Falcon', ...at(a)]),
      runCli(['name', 'claim', 'falcon', ...at(a)]),
      runCli(['name', 'resolve', 'quiet-river', ...at(a)]),
    ]);
    expect([bad.code, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr).toMatch(/^error: name: "Swift-Falcon" is not a name: use lowercase letters only; a name is two or more words/);
    expect([one.code, one.stdout]).toEqual([2, '']);
    expect(one.stderr).toMatch(/needs two or more words joined by "-"/);
    expect([unclaimed.code, unclaimed.stdout]).toEqual([1, '']);
    expect(unclaimed.stderr).toMatch(/^error: .*quiet-river.*\n$/);
    for (const r of [bad, one, unclaimed]) noStackTrace(r.stderr);
  });
});
