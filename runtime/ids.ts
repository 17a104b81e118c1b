// Identifiers are prefixed ULIDs (msg_01J…, task_…, net_…): sortable by creation time, unique without coordination.
import { monotonicFactory } from 'ulid';

const ulid = monotonicFactory();

export function newId(prefix: string): string {
  return `${prefix}_${ulid()}`;
}
