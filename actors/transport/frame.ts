// Length-prefixed (unsigned varint) frames on a libp2p 3 stream, bounded in size.
//
// libp2p 3 streams are event based (`send()` + 'message' events) and also async-iterable; data that arrives
// before anyone reads is buffered by the stream, so starting to read late loses nothing.
import * as lp from 'it-length-prefixed';
import type { Stream } from '@libp2p/interface';

export class FrameTooLarge extends Error {
  constructor(max: number) {
    super(`frame larger than ${max} bytes`);
    this.name = 'FrameTooLarge';
  }
}

/** Broken framing: an over-long length varint, or a stream that ended inside a frame. */
export class FrameMalformed extends Error {
  constructor(detail: string) {
    super(`malformed frame: ${detail}`);
    this.name = 'FrameMalformed';
  }
}

/** Yields frames until the remote closes its side. A length prefix above maxBytes throws before the body is read. */
export async function* readFrames(stream: Stream, maxBytes: number): AsyncGenerator<Uint8Array> {
  try {
    for await (const frame of lp.decode(stream, { maxDataLength: maxBytes })) yield frame.subarray();
  } catch (err) {
    // it-length-prefixed's error classes are not exported from its entry point; their names are stable.
    const name = (err as Error).name;
    if (name === 'InvalidDataLengthError') throw new FrameTooLarge(maxBytes);
    if (name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError' || name === 'UnexpectedEOFError') {
      throw new FrameMalformed((err as Error).message);
    }
    throw err;
  }
}

/** Queues one frame, waiting only if the stream's send buffer is full. */
export async function writeFrame(stream: Stream, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  if (!stream.send(lp.encode.single(bytes))) await stream.onDrain({ signal });
}
