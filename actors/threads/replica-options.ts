// What each consensus shell of a thread (raft-replica.ts, tendermint-validator.ts) is given by the threads actor.
import type { Clock } from '../../runtime/clock.ts';
import type { EventStore } from '../../runtime/event-store.ts';
import type { Logger } from '../../runtime/log.ts';
import type { ChainStore } from './chain-store.ts';

export interface ReplicaOptions {
  thread: string;
  /** Our DID. */
  self: string;
  /** Every replica's DID, in the thread's order (Tendermint's proposer rotation). */
  replicas: string[];
  store: EventStore;
  chain: ChainStore;
  clock: Clock;
  log: Logger;
  /** Reports a failure to the supervisor, which restarts the shell from what it persisted. */
  onCrash(error: unknown): void;
}
