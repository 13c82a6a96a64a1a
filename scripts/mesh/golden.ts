/**
 * Outputs rendered from the mesh model and committed, each checked by
 * test/golden/golden.test.ts. `npm run generate` (or running this file)
 * rewrites them; the test fails while a committed one differs from what the
 * model renders. (envoy/ingress.local.yaml is another such output, written by
 * envoy-config.ts and checked in test/e2e/sre.test.ts.)
 */
import { writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { loadMeshModel, type MeshModel } from "./model";
import { renderEnvironmentContract } from "./render-environment";
import { renderMeshSummary } from "./render-summary";
import { REPO_ROOT } from "./topology";

export interface GoldenOutput {
  path: string;
  render(model: MeshModel): string;
}

export const GOLDEN_OUTPUTS: GoldenOutput[] = [
  { path: join(REPO_ROOT, "test", "golden", "environment.txt"), render: renderEnvironmentContract },
  { path: join(REPO_ROOT, "test", "golden", "mesh-model.txt"), render: renderMeshSummary },
];

export function writeGoldenOutputs(model = loadMeshModel()): string[] {
  return GOLDEN_OUTPUTS.map((output) => {
    writeFileSync(output.path, output.render(model));
    return relative(REPO_ROOT, output.path);
  });
}

if (require.main === module) {
  for (const path of writeGoldenOutputs()) console.log(`wrote ${path}`);
}
