/**
 * One jest run for everything: unit tests next to the code (src/**\/*.test.ts),
 * integration tests per service (services/<name>/test) and end-to-end tests
 * through Envoy (test/e2e). The global setup starts a real local mesh
 * (FerretDB, Redis, services, Envoy) on random loopback ports once.
 */
const tsJest = ["ts-jest", { tsconfig: "tsconfig.test.json" }];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/services", "<rootDir>/test", "<rootDir>/scripts"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": tsJest },
  moduleNameMapper: {
    "^@leadmesh/contracts/descriptor$": "<rootDir>/services/contracts/descriptor/leadmesh.binpb",
    "^@leadmesh/contracts/(.*)$": "<rootDir>/services/contracts/src/gen/$1",
    "^@leadmesh/platform$": "<rootDir>/services/platform/src/index.ts",
  },
  modulePathIgnorePatterns: ["<rootDir>/services/.*/dist/", "<rootDir>/.tools/", "<rootDir>/.run/"],
  globalSetup: "<rootDir>/test/harness/global-setup.ts",
  globalTeardown: "<rootDir>/test/harness/global-teardown.ts",
  testTimeout: 60000,
  maxWorkers: 2,
};
