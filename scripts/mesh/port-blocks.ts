/**
 * Ports for meshes on random ports (tests, the bench), safe when several
 * start at once on one machine.
 *
 * Asking the kernel for a free port (bind to 0, close, hand the number to a
 * child that binds it seconds later) fails now and then: the number comes
 * from the ephemeral range, where any outgoing connection may take it
 * meanwhile, and two meshes starting together can be handed the same number.
 * Both happened here (a service crash-looping on EADDRINUSE). So a mesh
 * claims a block of ports below the ephemeral range, which the kernel never
 * hands out by itself, with a lock file that other meshes respect, and takes
 * its ports from that block after checking each is free. A lock whose owner
 * process is gone is stale and reclaimed.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canListen, ephemeralPortRange } from "./ports";

/** Below the default ephemeral range (32768+) and apart from the topology's fixed ports (6479, 8080, 9901, 20100+, 27117). */
export const RANDOM_PORT_RANGE = { low: 10_000, high: 19_999 };
export const PORT_BLOCK_SIZE = 100;
const LOCK_DIRECTORY = join(tmpdir(), "leadmesh-port-blocks");

export interface PortBlock {
  first: number;
  /** The next port of the block that nothing listens on. */
  next(): Promise<number>;
  /** Gives the block back (also done when this process exits). */
  release(): void;
}

const claimed = new Set<string>();
process.on("exit", () => {
  for (const lock of claimed) unlinkQuietly(lock);
});

function unlinkQuietly(path: string) {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Creates the lock file with our pid; takes over one whose owner process is gone. */
export function tryLock(path: string): boolean {
  try {
    const descriptor = openSync(path, "wx");
    writeSync(descriptor, String(process.pid));
    closeSync(descriptor);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const owner = Number(readFileSync(path, "utf8"));
  // A lock being written has no pid yet; leave it to its writer.
  if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) return false;
  unlinkQuietly(path);
  return tryLock(path);
}

/**
 * Claims a free block of RANDOM_PORT_RANGE (trying from a random one); undefined when
 * this machine's ephemeral range overlaps it (then the caller asks the kernel).
 */
export function claimPortBlock(): PortBlock | undefined {
  const ephemeral = ephemeralPortRange();
  if (ephemeral && ephemeral.low <= RANDOM_PORT_RANGE.high && ephemeral.high >= RANDOM_PORT_RANGE.low) return undefined;
  mkdirSync(LOCK_DIRECTORY, { recursive: true });
  const count = Math.floor((RANDOM_PORT_RANGE.high - RANDOM_PORT_RANGE.low + 1) / PORT_BLOCK_SIZE);
  const start = Math.floor(Math.random() * count);
  for (let index = 0; index < count; index += 1) {
    const first = RANDOM_PORT_RANGE.low + ((start + index) % count) * PORT_BLOCK_SIZE;
    const lock = join(LOCK_DIRECTORY, `${first}.lock`);
    if (!tryLock(lock)) continue;
    claimed.add(lock);
    let offset = 0;
    return {
      first,
      async next() {
        while (offset < PORT_BLOCK_SIZE) {
          const port = first + offset;
          offset += 1;
          if (await canListen(port)) return port;
        }
        throw new Error(`port block ${first}-${first + PORT_BLOCK_SIZE - 1} has no free port left`);
      },
      release() {
        claimed.delete(lock);
        unlinkQuietly(lock);
      },
    };
  }
  throw new Error(`every port block of ${RANDOM_PORT_RANGE.low}-${RANDOM_PORT_RANGE.high} is claimed (see ${LOCK_DIRECTORY})`);
}
