// Global bootstrap, on loopback: two daemons whose only common contact is a stand-in for the public IPFS DHT (a
// bare kad-dht node speaking /ipfs/kad/1.0.0, which knows nothing of the mesh) meet through the rendezvous record
// there, and then find each other's capabilities on the mesh's own DHT.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, type RunningDaemon } from '../../actors/daemon.ts';
import { AMINO_DHT_PROTOCOL } from '../../actors/transport/node.ts';
import { connectClient, type MoltmeshClient } from '../../sdk/client.ts';
import { tempDir } from '../support/temp-dir.ts';
import { dhtNode } from '../support/dht-node.ts';
import type { Libp2p } from 'libp2p';

describe('global bootstrap through a rendezvous record on the public DHT', () => {
  let publicDht: Libp2p;
  const daemons: { daemon: RunningDaemon; client: MoltmeshClient }[] = [];
  const dirs: { path: string; cleanup(): void }[] = [];

  beforeAll(async () => {
    publicDht = await dhtNode({ protocol: AMINO_DHT_PROTOCOL });
    const bootstrap = publicDht.getMultiaddrs()[0]!.toString();
    for (const capability of ['text-generation', 'embedding']) {
      const dir = tempDir('mm-rdv-');
      dirs.push(dir);
      writeFileSync(join(dir.path, 'moltbook.toml'), `[agent]\ncapabilities = ["${capability}"]\n[network]\nrendezvous = true\n`);
      const daemon = await startDaemon(
        { dataDir: dir.path, cwd: dir.path, listen: ['/ip4/127.0.0.1/tcp/0'], ipfsBootstrap: false, mdns: false, bootstrap: [bootstrap] },
        { log: () => undefined },
      );
      daemons.push({ daemon, client: connectClient({ dataDir: dir.path }) });
    }
  }, 30_000);

  afterAll(async () => {
    for (const { daemon, client } of daemons) {
      client.close();
      await daemon.stop();
    }
    await publicDht?.stop();
    for (const d of dirs) d.cleanup();
  });

  it('each daemon finds the other by capability, though neither was told of the other', async () => {
    const [a, b] = daemons;
    const deadline = Date.now() + 30_000;
    let found: string[] = [];
    while (Date.now() < deadline) {
      found = [];
      for await (const r of a!.client.a2a.findAgents({ capability: 'embedding', limit: 5, timeoutMs: 2_000 })) found.push(r.card!.did);
      if (found.includes(b!.daemon.did)) break;
      await new Promise((r) => setTimeout(r, 200)); // the rendezvous and the provider record spread in the background
    }
    expect(found).toEqual([b!.daemon.did]);
    const back: string[] = [];
    for await (const r of b!.client.a2a.findAgents({ capability: 'text-generation', limit: 5, timeoutMs: 5_000 })) back.push(r.card!.did);
    expect(back).toEqual([a!.daemon.did]);
  }, 40_000);
});
