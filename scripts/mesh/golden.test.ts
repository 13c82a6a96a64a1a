/**
 * Every committed output of the mesh model is what the model renders now.
 * UPDATE_GOLDEN=1 (or `npm run generate`) rewrites them instead.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { relative } from "node:path";
import { GOLDEN_OUTPUTS } from "./golden";
import { loadMeshModel } from "./model";
import { REPO_ROOT } from "./topology";

const model = loadMeshModel();

describe.each(GOLDEN_OUTPUTS.map((output) => [relative(REPO_ROOT, output.path), output] as const))("%s", (path, output) => {
  it("is what the mesh model renders (npm run generate rewrites it)", () => {
    const rendered = output.render(model);
    if (process.env.UPDATE_GOLDEN) writeFileSync(output.path, rendered);
    const committed = readFileSync(output.path, "utf8");
    if (committed !== rendered) throw new Error(`${path} is stale: run 'npm run generate' and commit the result`);
    expect(committed).toBe(rendered);
  });
});
