// The CLI entry point (started by bin/moltmesh-daemon with the project's Node).
import module from 'node:module';

// Before anything heavy is imported: later runs reuse V8's compiled code (and stripped TypeScript) for every module.
// The launcher usually enabled it already through NODE_COMPILE_CACHE; this covers `node bin/run.ts`.
module.enableCompileCache?.();

// `moltmesh-daemon peers | head -1`: a closed stdout is the reader saying "enough", not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const { execute, settings } = await import('@oclif/core');
// oclif registers tsx/ts-node for .ts sources when NODE_ENV is development/test (vitest sets "test") and warns when
// neither is installed. Node strips the types itself, so load the .ts files as they are.
settings.enableAutoTranspile = false;
await execute({ dir: import.meta.url });
