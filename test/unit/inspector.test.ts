// `start --inspect`'s server: task machines reach a page on 127.0.0.1 as Stately inspection events, behind a
// secret path.
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { AnyMachineSnapshot } from 'xstate';
import { startInspector, type InspectionSource } from '../../actors/inspector.ts';
import { start, step } from '../../runtime/transitions.ts';
import { task, type TaskEvent } from '../../machines/task.ts';

const R = 'did:key:z6MkRequester';
const A = 'did:key:z6MkAssignee';

describe('inspector', () => {
  it('serves the page only at its secret path and streams actors and transitions to it', async () => {
    type Observer = Parameters<InspectionSource['observe']>[0];
    let observer: Observer | undefined;
    const created = start(task, { id: 'task_01JY0000000000000000000000', requester: R, assignee: A, self: R, skill: 'a2a:v1:cap:x', metadata: {}, input: [], createdAt: 1 }, 1).snapshot;
    const source: InspectionSource = {
      observe: (o) => {
        observer = o;
        o.actor('task/t1', created); // a task that was live when the inspector started
        return () => (observer = undefined);
      },
    };
    const inspector = await startInspector(source, task, { port: 0 });
    try {
      const url = new URL(inspector.url);
      expect(url.hostname).toBe('127.0.0.1');
      expect((await fetch(inspector.url)).status).toBe(200);
      expect(await (await fetch(inspector.url)).text()).toContain('https://stately.ai/inspect');
      expect((await fetch(`http://${url.host}/`)).status).toBe(404);

      const ws = new WebSocket(`ws://${url.host}${url.pathname}`);
      const received: { type: string; sessionId: string; snapshot?: { value: unknown }; definition?: string }[] = [];
      let wake = () => undefined as void;
      ws.on('message', (m) => (received.push(JSON.parse(String(m))), wake()));
      const got = (n: number) => new Promise<void>((resolve) => {
        wake = () => void (received.length >= n && resolve());
        wake();
      });
      const first = got(1);
      await first;
      expect(received[0]).toMatchObject({ type: '@xstate.actor', sessionId: 'task/t1' });
      expect(JSON.parse(received[0]!.definition!)).toMatchObject({ id: 'task' });

      const accept = { type: 'ACCEPT', by: A, at: 2 } as TaskEvent;
      const next: AnyMachineSnapshot = step(task, created, accept).snapshot;
      const more = got(3);
      observer!.transition('task/t1', accept, next);
      await more;
      expect(received.slice(1).map((e) => e.type)).toEqual(['@xstate.event', '@xstate.snapshot']);
      expect(received[2]!.snapshot!.value).toEqual({ open: { status: 'working', deadline: 'unwatched' } });
      ws.close();
      // A wrong path gets no socket.
      const stranger = new WebSocket(`ws://${url.host}/nope`);
      await expect(new Promise((ok, fail) => (stranger.once('open', ok), stranger.once('error', fail)))).rejects.toThrow();
    } finally {
      await inspector.stop();
    }
    expect(observer).toBeUndefined();
  });
});
