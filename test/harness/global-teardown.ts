import { rmSync } from "node:fs";
import type { RunningMesh } from "../../scripts/mesh/local-mesh";

export default async function globalTeardown(): Promise<void> {
  const mesh = (globalThis as { __leadmeshMesh?: RunningMesh }).__leadmeshMesh;
  if (!mesh) return;
  await mesh.stop();
  if (!process.env.KEEP_TEST_RUN_DIR) rmSync(mesh.runDir, { recursive: true, force: true });
}
