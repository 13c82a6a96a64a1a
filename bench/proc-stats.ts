/**
 * Watches server processes during a load run through /proc: peak resident
 * memory (VmRSS, sampled) and average CPU use (utime+stime delta). CPU near
 * 100% on a single-threaded Node server means the server, not the load
 * generator, is the bottleneck, which is what makes the numbers meaningful.
 */
import { readFileSync } from "node:fs";

/** USER_HZ, the unit of /proc/<pid>/stat times; 100 on every Linux ABI we run on. */
const CLOCK_TICKS_PER_SECOND = 100;
const RSS_SAMPLE_MS = 200;

export interface ProcessUsage {
  /** Average CPU over the run, 100 = one core. */
  cpuPercent: number;
  maxRssMb: number;
}

export type UsageByProcess = Record<string, ProcessUsage>;

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces; count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
}

/** 0 once the process is gone: a crash surfaces as load errors, not as a timer exception. */
function rssMb(pid: number): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export interface ProcessWatch {
  /** Ends the watch and returns what was seen. */
  stop(): UsageByProcess;
  /** Ends the watch without reading anything (the run failed). */
  cancel(): void;
}

/** Starts watching `pids` (name → pid) until stop() or cancel(). */
export function watchProcesses(pids: Record<string, number>): ProcessWatch {
  const started = Date.now();
  const startTicks = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuTicks(pid)]));
  const maxRss: Record<string, number> = Object.fromEntries(Object.keys(pids).map((name) => [name, 0]));
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) maxRss[name] = Math.max(maxRss[name], rssMb(pid));
  };
  sample();
  const timer = setInterval(sample, RSS_SAMPLE_MS);
  const cancel = () => clearInterval(timer);
  const stop = (): UsageByProcess => {
    cancel();
    sample();
    const elapsedS = (Date.now() - started) / 1000;
    return Object.fromEntries(
      Object.entries(pids).map(([name, pid]) => [
        name,
        { cpuPercent: ((cpuTicks(pid) - startTicks[name]) / CLOCK_TICKS_PER_SECOND / elapsedS) * 100, maxRssMb: maxRss[name] },
      ]),
    );
  };
  return { stop, cancel };
}
