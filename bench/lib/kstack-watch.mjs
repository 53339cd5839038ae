#!/usr/bin/env node
// Which kernel call a server's threads wait in: every few ms, each thread of <pid> found in state D
// (uninterruptible: disk, filesystem locks) is printed with its wait channel and kernel stack. A
// stall of the event loop that loop-watch.mjs reports with no GC and (with --cpu-prof) almost no
// samples is a thread off the CPU; this says where. It found the WAL truncated on the event loop
// (ext4_truncate → ext4_free_blocks → blkdev_issue_discard, bench/README.md).
//
//   taskset -c 0 node bench/lib/kstack-watch.mjs <pid> [--seconds 60] [--every-ms 2]
//
// Linux only; reading another process's /proc/<pid>/task/<tid>/stack needs root. Run it on the
// load generator's core, not the server's.
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({
  options: { seconds: { type: 'string', default: '60' }, 'every-ms': { type: 'string', default: '2' } },
  allowPositionals: true,
});
const pid = positionals[0];
if (!pid) {
  console.error('usage: node bench/lib/kstack-watch.mjs <pid> [--seconds 60] [--every-ms 2]');
  process.exit(2);
}

const read = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the thread (or the process) is gone
  }
};
const end = Date.now() + Number(args.seconds) * 1000;
const every = Number(args['every-ms']);
let seen = 0;
const timer = setInterval(() => {
  if (Date.now() >= end || read(`/proc/${pid}/stat`) === undefined) {
    clearInterval(timer);
    console.error(`[kstack ${pid}] ${seen} samples in state D`);
    return;
  }
  for (const tid of readdirSync(`/proc/${pid}/task`, { throwIfNoEntry: false }) ?? []) {
    const stat = read(`/proc/${pid}/task/${tid}/stat`);
    // The state follows the command name, which is in parentheses and may hold spaces.
    if (stat === undefined || stat[stat.lastIndexOf(')') + 2] !== 'D') continue;
    seen++;
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const wchan = read(`/proc/${pid}/task/${tid}/wchan`) ?? '?';
    const stack = (read(`/proc/${pid}/task/${tid}/stack`) ?? '')
      .split('\n')
      .filter(Boolean)
      .slice(0, 12)
      .map((line) => line.replace(/^\[<[0-9a-f]+>\] /, '').replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+$/, ''));
    console.log(`${new Date().toISOString().slice(11, 23)} tid ${tid} (${comm}) D ${wchan}: ${stack.join(' ← ')}`);
  }
}, every);
