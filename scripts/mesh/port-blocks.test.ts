import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { claimPortBlock, PORT_BLOCK_SIZE, RANDOM_PORT_RANGE, tryLock } from "./port-blocks";

describe("port blocks", () => {
  it("gives each mesh its own block below the ephemeral range, and skips ports something else holds", async () => {
    const first = claimPortBlock()!;
    const second = claimPortBlock()!;
    try {
      expect(first.first).not.toBe(second.first);
      for (const block of [first, second]) {
        expect(block.first).toBeGreaterThanOrEqual(RANDOM_PORT_RANGE.low);
        expect(block.first + PORT_BLOCK_SIZE - 1).toBeLessThanOrEqual(RANDOM_PORT_RANGE.high);
      }
      const holder = createServer();
      await new Promise<void>((resolve) => holder.listen(first.first, "127.0.0.1", resolve));
      try {
        const ports = [await first.next(), await first.next()];
        expect(ports[0]).toBeGreaterThan(first.first);
        expect(ports[1]).toBeGreaterThan(ports[0]);
        expect(ports[1]).toBeLessThan(first.first + PORT_BLOCK_SIZE);
      } finally {
        holder.close();
      }
    } finally {
      first.release();
      second.release();
    }
  });

  it("respects a lock whose owner lives and takes over one whose owner is gone", () => {
    const directory = mkdtempSync(join(tmpdir(), "leadmesh-locks-"));
    const live = join(directory, "live.lock");
    writeFileSync(live, String(process.ppid));
    expect(tryLock(live)).toBe(false);

    const gone = spawnSync(process.execPath, ["-e", "0"]).pid;
    const stale = join(directory, "stale.lock");
    writeFileSync(stale, String(gone));
    expect(tryLock(stale)).toBe(true);
    expect(readFileSync(stale, "utf8")).toBe(String(process.pid));

    const fresh = join(directory, "fresh.lock");
    expect(tryLock(fresh)).toBe(true);
    expect(existsSync(fresh)).toBe(true);
  });
});
