import { AuthServiceDefinition } from "@leadmesh/contracts/auth/v1/auth";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { ClientError, Metadata, Status } from "nice-grpc-common";
import { callOptionsFrom, DEFAULT_DEADLINE_MS, methodPaths, RetryBudget, retryablePaths, retryMiddleware, serviceConfigFor } from "./clients";
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

describe("retries", () => {
  it("give every attempt the one deadline of the call, also when it was given in ms", async () => {
    const path = "/users.v1.TenantService/GetTenant";
    const deadlines: unknown[] = [];
    const call = {
      method: { path, requestStream: false, responseStream: false },
      requestStream: false,
      responseStream: false,
      request: {},
      async *next(_request: unknown, options: { deadline?: unknown }) {
        deadlines.push(options.deadline);
        await new Promise((resolve) => setTimeout(resolve, 30));
        if (deadlines.length < 3) throw new ClientError(path, Status.UNAVAILABLE, "replica gone");
        return {};
      },
    };
    const retry = retryMiddleware(new Set([path]));
    const run = retry(call as never, { deadline: 5000 } as never);
    for (let step = await run.next(); !step.done; step = await run.next());
    expect(deadlines).toHaveLength(3);
    expect(deadlines[0]).toBeInstanceOf(Date);
    expect(new Set(deadlines.map((deadline) => (deadline as Date).getTime())).size).toBe(1);
  });
});

describe("options of a call made while handling another", () => {
  const upstream = (headers: Record<string, string>) => {
    const controller = new AbortController();
    const context = {
      metadata: Metadata(headers),
      peer: "ipv4:127.0.0.1:1",
      signal: controller.signal,
      header: Metadata(),
      trailer: Metadata(),
      sendHeader: () => undefined,
    };
    return { context, controller };
  };

  it("ends no later than the upstream deadline, and gets a default when the upstream has none", () => {
    const soon = Date.now() + 200;
    const { context } = upstream({ "leadmesh-deadline": String(soon) });
    expect((callOptionsFrom(context).deadline as Date).getTime()).toBe(soon);
    // The upstream's deadline is later than the downstream's own bound: the own bound wins.
    const far = upstream({ "leadmesh-deadline": String(Date.now() + 60_000) }).context;
    const bounded = (callOptionsFrom(far, { deadlineMs: 1000 }).deadline as Date).getTime() - Date.now();
    expect(bounded).toBeGreaterThan(900);
    expect(bounded).toBeLessThanOrEqual(1000);
    const none = (callOptionsFrom(upstream({}).context).deadline as Date).getTime() - Date.now();
    expect(none).toBeGreaterThan(DEFAULT_DEADLINE_MS - 100);
    expect(none).toBeLessThanOrEqual(DEFAULT_DEADLINE_MS);
  });

  it("is cancelled with the upstream call", () => {
    const { context, controller } = upstream({});
    const options = callOptionsFrom(context);
    controller.abort();
    expect(options.signal?.aborted).toBe(true);
  });

  it("forwards the user's token or names the tenant, and nothing else", () => {
    const { context } = upstream({ authorization: "Bearer t", "leadmesh-peer": "spiffe://x", "x-custom": "1", "leadmesh-tenant": "other" });
    expect([...(callOptionsFrom(context, { forwardUser: true }).metadata ?? [])]).toEqual([["authorization", ["Bearer t"]]]);
    expect([...(callOptionsFrom(context, { tenant: "acme" }).metadata ?? [])]).toEqual([["leadmesh-tenant", ["acme"]]]);
    expect([...(callOptionsFrom(context).metadata ?? [])]).toEqual([]);
  });
});
