// `start --inspect`: live task machines in the Stately inspector (@statelyai/inspect).
//
// Our actors step machines purely (runtime/transitions.ts), so there is no xstate actor to attach an inspector
// to: the tasks actor reports each task's creation and every transition, and we turn them into the inspector's
// events with its own `createInspector`. A page served here on 127.0.0.1 embeds the hosted inspector UI
// (https://stately.ai/inspect, so the browser needs internet) and relays the events to it over a WebSocket.
// The page and the socket live under a random path, so another local user or a web page in the same browser
// cannot read task contents by guessing the port.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInspector } from '@statelyai/inspect';
import { WebSocket, WebSocketServer } from 'ws';
import type { AnyMachineSnapshot, AnyStateMachine } from 'xstate';

/** What an inspected actor system reports. */
export interface InspectionSource {
  /** Calls back for every actor that exists now and every one created later, and for every transition. */
  observe(observer: {
    actor(id: string, snapshot: AnyMachineSnapshot): void;
    transition(id: string, event: { type: string }, snapshot: AnyMachineSnapshot): void;
  }): () => void;
}

/** Events kept for a page that opens later (the newest; older ones are shown again as actors re-announce). */
const MAX_BUFFERED = 2000;

export async function startInspector(
  source: InspectionSource,
  machine: AnyStateMachine,
  options: { port: number },
): Promise<{ url: string; stop(): Promise<void> }> {
  const secret = randomBytes(16).toString('hex');
  const buffered: string[] = [];
  const pages = new Set<WebSocket>();

  const inspector = createInspector(
    {
      start: () => undefined,
      stop: () => undefined,
      send: (event) => {
        const json = JSON.stringify(event, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v));
        buffered.push(json);
        if (buffered.length > MAX_BUFFERED) buffered.shift();
        for (const page of pages) if (page.readyState === WebSocket.OPEN) page.send(json);
      },
    },
    { serializationDepthLimit: 20 },
  );
  // The inspector reads a machine's definition from `logic.config`, as on an xstate actor.
  const ref = (id: string) => ({ sessionId: id, logic: machine, _parent: undefined }) as never;
  const plain = (s: AnyMachineSnapshot) => ({ status: s.status, value: s.value, context: s.context });
  const stopObserving = source.observe({
    actor: (id, snapshot) => inspector.actor(ref(id), plain(snapshot)),
    transition: (id, event, snapshot) => {
      inspector.event(ref(id), event);
      inspector.snapshot(ref(id), plain(snapshot), { event });
    },
  });

  const http = createServer((req, res) => {
    if (req.url !== `/${secret}`) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(bridgePage(secret));
  });
  const wss = new WebSocketServer({ server: http, path: `/${secret}`, maxPayload: 1024 });
  wss.on('connection', (ws) => {
    pages.add(ws);
    for (const json of buffered) ws.send(json);
    ws.on('close', () => pages.delete(ws));
    ws.on('error', () => pages.delete(ws));
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, '127.0.0.1', () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${secret}`,
    async stop() {
      stopObserving();
      for (const page of pages) page.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** The page: the hosted inspector in a frame, fed with our events once it says it is ready. */
function bridgePage(secret: string): string {
  return `<!DOCTYPE html>
<html><head><title>moltmesh — task machines</title>
<style>* { margin: 0; padding: 0; } html, body { height: 100%; } iframe { width: 100%; height: 100%; border: none; }</style>
</head><body>
<iframe id="inspector" src="https://stately.ai/inspect"></iframe>
<script>
  const frame = document.getElementById('inspector');
  const early = [];
  let ready = false;
  window.addEventListener('message', (e) => {
    if (e.data && e.data.type === '@statelyai.connected') {
      ready = true;
      for (const ev of early.splice(0)) frame.contentWindow.postMessage(ev, '*');
    }
  });
  const ws = new WebSocket('ws://' + location.host + '/${secret}');
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ready) frame.contentWindow.postMessage(ev, '*'); else early.push(ev);
  };
</script>
</body></html>`;
}
