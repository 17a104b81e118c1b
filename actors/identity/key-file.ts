// The agent's identity key on disk: <dataDir>/identity.key, mode 0600, in a data dir created 0700.
//
// Format: one JSON line {"v":1,"type":"Ed25519","seed":"<base64url 32 bytes>","did":"did:key:…"}. JSON keeps
// it inspectable; the DID is stored only to catch a corrupted or hand-edited seed on load.
// Created with link(2) from a fully written, fsynced temp file: link refuses to replace an existing file, so two
// processes starting at once on a fresh data dir both end up with the same (first) key, never a torn one.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { PeerId } from '@libp2p/interface';
import { ApiError } from '../../runtime/errors.ts';
import { identityFromSeed, newSeed, type Identity } from './ed25519.ts';
import { createFileOnce } from '../../runtime/create-file-once.ts';

export type { Identity } from './ed25519.ts';

export const KEY_FILE = 'identity.key';

interface KeyFileV1 { v: 1; type: 'Ed25519'; seed: string; did: string }

/** Loads the identity, creating the data dir (0700) and a new key (0600) on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<Identity> {
  return (await loadOrCreate(dataDir)).identity;
}

export interface PublicIdentity { did: string; publicKey: Uint8Array; peerId: PeerId; keyPath: string; created: boolean }

/**
 * The identity for the CLI `identity` command, which works without a running daemon: it reads the key file
 * directly. If there is none yet it **creates** it (exactly as the daemon's first start would), so the DID shown
 * is the one the daemon will use; `created` tells the caller that happened.
 */
export async function readIdentity(dataDir: string): Promise<PublicIdentity> {
  const { identity, created, keyPath } = await loadOrCreate(dataDir);
  return { did: identity.did, publicKey: identity.publicKey, peerId: identity.peerId, keyPath, created };
}

async function loadOrCreate(dataDir: string): Promise<{ identity: Identity; created: boolean; keyPath: string }> {
  const dir = path.resolve(dataDir);
  const keyPath = path.join(dir, KEY_FILE);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  let created = false;
  if (!(await exists(keyPath))) created = await createKeyFile(dir, keyPath);
  return { identity: await readKeyFile(keyPath), created, keyPath };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Returns false when another process created the key first (we then use theirs). */
async function createKeyFile(dir: string, keyPath: string): Promise<boolean> {
  const seed = newSeed();
  const identity = await identityFromSeed(seed);
  const content: KeyFileV1 = { v: 1, type: 'Ed25519', seed: Buffer.from(seed).toString('base64url'), did: identity.did };
  return createFileOnce(keyPath, JSON.stringify(content) + '\n');
}

async function readKeyFile(keyPath: string): Promise<Identity> {
  const st = await fs.lstat(keyPath);
  if (!st.isFile()) {
    throw new ApiError('FAILED_PRECONDITION', `identity key ${keyPath} is not a regular file (symlinks are refused)`);
  }
  // A secret key others can read is already compromised; refuse rather than silently fix it.
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
    throw new ApiError('PERMISSION_DENIED',
      `identity key ${keyPath} is readable by group/other (mode ${mode}); run: chmod 600 ${keyPath}`);
  }
  const corrupt = (why: string) =>
    new ApiError('FAILED_PRECONDITION', `identity key ${keyPath} is corrupt (${why}); restore it from a backup or move it away to create a new identity`);
  let parsed: Partial<KeyFileV1>;
  try {
    parsed = JSON.parse(await fs.readFile(keyPath, 'utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  if (parsed?.v !== 1 || parsed.type !== 'Ed25519' || typeof parsed.seed !== 'string') throw corrupt('unknown format');
  const seed = Buffer.from(parsed.seed, 'base64url');
  if (seed.length !== 32) throw corrupt('seed is not 32 bytes');
  const identity = await identityFromSeed(new Uint8Array(seed));
  if (parsed.did !== undefined && parsed.did !== identity.did) throw corrupt('seed does not match the stored DID');
  return identity;
}
