import { AuthServiceDefinition } from "@leadmesh/contracts/auth/v1/auth";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { methodPaths, RetryBudget, retryablePaths, serviceConfigFor } from "./clients";
import { contracts } from "./contract/contracts";

describe("a mesh client", () => {
  it("balances round-robin over every resolved address", () => {
    expect(serviceConfigFor()).toEqual({ loadBalancingConfig: [{ round_robin: {} }] });
  });

  it("retries only the RPCs the contract declares safe to repeat", () => {
    const retried = [...retryablePaths(TenantServiceDefinition)];
    expect(retried.sort()).toEqual(
      methodPaths(TenantServiceDefinition)
        .filter((path) => contracts().method(path)?.retryable)
        .sort(),
    );
    expect(retried).toContain("/users.v1.TenantService/GetTenant"); // NO_SIDE_EFFECTS
    expect(retried).not.toContain("/users.v1.TenantService/CreateTenant"); // may not be repeated
    expect([...retryablePaths(AuthServiceDefinition)]).toContain("/auth.v1.AuthService/GetJwks");
  });

  it("spends at most one retry per two successful calls, after a burst of 10", () => {
    const budget = new RetryBudget();
    let granted = 0;
    for (let i = 0; i < 100; i++) if (budget.take()) granted += 1;
    expect(granted).toBe(10);
    for (let i = 0; i < 10; i++) budget.succeeded();
    expect([budget.take(), budget.take(), budget.take(), budget.take(), budget.take(), budget.take()]).toEqual([true, true, true, true, true, false]);
  });
});
