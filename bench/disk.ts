// The disk's own floor under a durable request: an answer waits for its audit record's fdatasync,
// so at one connection no request can be faster than one sync of the file system the data lives on.

import { open, rm } from "node:fs/promises";
import { join } from "node:path";

export interface SyncTimes {
  count: number;
  p50Ms: number;
  p90Ms: number;
}

/** `count` fdatasyncs, each after an 8 KiB append (what a WAL commit of a batch adds), in `dir`. */
export async function measureFdatasync(dir: string, count = 200): Promise<SyncTimes> {
  const path = join(dir, "fdatasync-probe");
  const file = await open(path, "w");
  const block = Buffer.alloc(8192, 0x5a);
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      await file.write(block);
      const start = performance.now();
      await file.datasync();
      times.push(performance.now() - start);
    }
  } finally {
    await file.close();
    await rm(path, { force: true });
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 1000) / 1000;
  return { count, p50Ms: at(0.5), p90Ms: at(0.9) };
}
