// Child process: the event loop's largest stall while the library runs a batch of `keys` token
// keys with a login, findKey and attribute reads, beside the same probe with nothing running
// (the machine's own noise, measured in the same process just before). Prints one JSON object.
//   node bench/stall-batch.mjs '{"api": ".../dist/index.js", "module": "...", "token": "...", "keys": 1000}'
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

const o = JSON.parse(process.argv[2]);
const { Kmu } = await import(pathToFileURL(o.api).href);

function probe() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return () => {
    h.disable();
    return Math.max(0, h.max / 1e6 - 1);
  };
}

const idle = probe();
await sleep(o.idleMs ?? 3000);
const stallIdle = idle();

const kmu = await Kmu.open({ module: o.module, token: o.token, home: o.home });
const lines = [
  `loginHSM -u CU -s user -p ${o.pin}`,
  ...Array.from({ length: o.keys }, (_, i) => `genECCKeyPair -i 2 -l s${i % 50}`),
  'findKey -l s7',
  'findKey',
];
const stop = probe();
const t0 = process.hrtime.bigint();
const results = await kmu.batch(lines, { parallel: o.parallel ?? 1 });
const handles = results.at(-2).data.handles;
const reads = await kmu.batch(handles.slice(0, 40).flatMap((h) => [`getAttribute -o ${h} -a 3`, `getAttribute -o ${h} -a 512`]));
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const stall = stop();
await kmu.close();
const failed = [...results, ...reads].filter((r) => r.code !== 0).length;
if (failed) throw new Error(`${failed} lines failed`);
process.stdout.write(JSON.stringify({ keys: o.keys, seconds, max_stall_ms: stall, stall_idle_ms: stallIdle, reads: reads.length }) + '\n');
