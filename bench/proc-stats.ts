/**
 * Watches a load run through /proc: peak resident memory (VmRSS, sampled)
 * and average CPU of each server process, of the load generator and of
 * everything else on the host. On a 2-core box they all compete: a server
 * near 100% is the bottleneck; a server well below it means the load
 * generator or some other work on the host (a concurrent build or test
 * run) took the cores, and the numbers should be read with that in mind.
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

/** CPU shares are averages over the run, 100 = one core. */
export interface Usage {
  hostCpuPercent: number;
  /** ghz or hey: children of the bench that exited during the run. */
  loadGeneratorCpuPercent: number;
  /** Host CPU not accounted for by the servers, the load generator or the bench itself. */
  otherCpuPercent: number;
  processes: UsageByProcess;
}

/** Fields of /proc/<pid>/stat from field 3 on (the command name may contain spaces). */
function statFields(pid: number | "self"): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
}

/** utime + stime (fields 14, 15). */
const cpuTicks = (pid: number | "self") =>
  statFields(pid)
    .slice(11, 13)
    .reduce((sum, ticks) => sum + ticks, 0);

/** cutime + cstime (fields 16, 17): CPU of children already waited for, i.e. finished load generators. */
const finishedChildrenTicks = () =>
  statFields("self")
    .slice(13, 15)
    .reduce((sum, ticks) => sum + ticks, 0);

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

/**
 * Starts watching `pids` (name → pid) until stop() or cancel(). Call stop()
 * after the load generator exited, so that its CPU is counted.
 */
export function watchProcesses(pids: Record<string, number>): ProcessWatch {
  const started = Date.now();
  const ticksNow = () => ({
    host: hostBusyTicks(),
    self: cpuTicks("self"),
    children: finishedChildrenTicks(),
    processes: Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuTicks(pid)])),
  });
  const before = ticksNow();
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
    const after = ticksNow();
    const elapsedS = (Date.now() - started) / 1000;
    const percentOf = (ticks: number) => (ticks / CLOCK_TICKS_PER_SECOND / elapsedS) * 100;
    const processes = Object.fromEntries(
      Object.keys(pids).map((name) => [name, { cpuPercent: percentOf(after.processes[name] - before.processes[name]), maxRssMb: maxRss[name] }]),
    );
    const hostCpuPercent = percentOf(after.host - before.host);
    const loadGeneratorCpuPercent = percentOf(after.children - before.children);
    const knownCpuPercent = Object.values(processes).reduce(
      (sum, usage) => sum + usage.cpuPercent,
      loadGeneratorCpuPercent + percentOf(after.self - before.self),
    );
    return { hostCpuPercent, loadGeneratorCpuPercent, otherCpuPercent: Math.max(0, hostCpuPercent - knownCpuPercent), processes };
  };
  return { stop, cancel };
}
