import { type ChainLink, MAX_CHAIN_DEPTH, managerProblem } from "./hierarchy";

const link = (id: string, managerId: string, deleted = false): ChainLink => ({ id, managerId, deleted });

describe("managerProblem", () => {
  it("accepts a live manager whose chain does not lead back", () => {
    expect(managerProblem("u1", "m1", [link("m1", "m2"), link("m2", "")])).toBeUndefined();
    expect(managerProblem(undefined, "m1", [link("m1", "")])).toBeUndefined();
  });

  it("refuses the user themselves", () => {
    expect(managerProblem("u1", "u1", [])).toBe("a user cannot be their own manager");
  });

  it("refuses missing and deleted managers", () => {
    expect(managerProblem("u1", "m1", [])).toBe('"m1" is not a user of this tenant');
    expect(managerProblem("u1", "m1", [link("m1", "", true)])).toBe('"m1" is not a user of this tenant');
  });

  it("refuses a cycle and shows it", () => {
    // u1 → m1 → m2 → u1
    expect(managerProblem("u1", "m1", [link("m1", "m2"), link("m2", "u1")])).toBe("would make a cycle in the manager chain: u1 → m1 → m2 → u1");
    // direct: u1 → m1 → u1
    expect(managerProblem("u1", "m1", [link("m1", "u1")])).toMatch(/u1 → m1 → u1/);
  });

  it("refuses chains deeper than the limit", () => {
    const chain = Array.from({ length: MAX_CHAIN_DEPTH }, (_, i) => link(`m${i}`, `m${i + 1}`));
    expect(managerProblem("u1", "m0", chain)).toMatch(/deeper than/);
    chain[chain.length - 1] = link(`m${MAX_CHAIN_DEPTH - 1}`, "");
    expect(managerProblem("u1", "m0", chain)).toBeUndefined();
  });
});
