/**
 * Watches server processes during a load run through /proc: peak resident
 * memory (VmRSS, sampled) and average CPU use (utime+stime delta), plus the
 * whole host's CPU. On a 2-core box the load generator competes with the
 * servers: a server near 100% is the bottleneck; a server well below it
 * with the host near 200% means the box (often the load generator) is.
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

export interface Usage {
  /** Busy CPU of the whole host, 100 = one core. */
  hostCpuPercent: number;
  processes: UsageByProcess;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces; count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
}

/** Busy ticks of all cores together: everything but idle and iowait. */
function hostBusyTicks(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return user + nice + system + irq + softirq + steal;
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
  stop(): Usage;
  /** Ends the watch without reading anything (the run failed). */
  cancel(): void;
}

/** Starts watching `pids` (name → pid) until stop() or cancel(). */
export function watchProcesses(pids: Record<string, number>): ProcessWatch {
  const started = Date.now();
  const hostStartTicks = hostBusyTicks();
  const startTicks = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuTicks(pid)]));
  const maxRss: Record<string, number> = Object.fromEntries(Object.keys(pids).map((name) => [name, 0]));
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) maxRss[name] = Math.max(maxRss[name], rssMb(pid));
  };
  sample();
  const timer = setInterval(sample, RSS_SAMPLE_MS);
  const cancel = () => clearInterval(timer);
  const stop = (): Usage => {
    cancel();
    sample();
    const elapsedS = (Date.now() - started) / 1000;
    const percentOf = (ticks: number) => (ticks / CLOCK_TICKS_PER_SECOND / elapsedS) * 100;
    const processes = Object.fromEntries(
      Object.entries(pids).map(([name, pid]) => [name, { cpuPercent: percentOf(cpuTicks(pid) - startTicks[name]), maxRssMb: maxRss[name] }]),
    );
    return { hostCpuPercent: percentOf(hostBusyTicks() - hostStartTicks), processes };
  };
  return { stop, cancel };
}
