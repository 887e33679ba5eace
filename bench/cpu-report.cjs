// Preloaded (`node -r`) into each start-up run measured for CPU: at exit, appends the process's
// own CPU time (all its threads: getrusage) to $KMU11_BENCH_CPU_FILE. CPU time, unlike wall
// time, barely moves with the machine's load.
'use strict';
const file = process.env.KMU11_BENCH_CPU_FILE;
if (file) {
  process.once('exit', () => {
    const { user, system } = process.cpuUsage();
    require('node:fs').appendFileSync(file, `${(user + system) / 1000}\n`);
  });
}
