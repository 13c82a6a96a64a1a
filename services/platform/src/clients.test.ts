import { AuthServiceDefinition } from "@leadmesh/contracts/auth/v1/auth";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { methodPaths, serviceConfigFor } from "./clients";
import { contracts } from "./contract/contracts";

describe("the service config of a mesh client", () => {
  it("balances round-robin over every resolved address", () => {
    expect(serviceConfigFor(TenantServiceDefinition)).toMatchObject({ loadBalancingConfig: [{ round_robin: {} }] });
  });

  it("retries UNAVAILABLE only for the methods the contract declares safe to repeat", () => {
    const config = serviceConfigFor(TenantServiceDefinition) as { methodConfig: { name: { service: string; method: string }[]; retryPolicy: object }[] };
    const retried = config.methodConfig.flatMap((entry) => entry.name.map((name) => `/${name.service}/${name.method}`));
    const expected = methodPaths(TenantServiceDefinition).filter((path) => contracts().method(path)?.retryable);
    expect(retried.sort()).toEqual(expected.sort());
    expect(retried).toContain("/users.v1.TenantService/GetTenant"); // NO_SIDE_EFFECTS
    expect(retried).not.toContain("/users.v1.TenantService/CreateTenant"); // may not be repeated
    expect(config.methodConfig[0].retryPolicy).toMatchObject({ maxAttempts: 3, retryableStatusCodes: ["UNAVAILABLE"] });
  });

  it("finds the gRPC paths of a ts-proto definition", () => {
    expect(methodPaths(AuthServiceDefinition)).toContain("/auth.v1.AuthService/GetJwks");
  });
});
