/**
 * Two jest projects:
 * - unit: tests next to the code (services/<name>/src/**\/*.test.ts and
 *   scripts/**\/*.test.ts: the mesh model, its renderers, the launcher's rules). Pure or
 *   self-contained; they start no mesh, so `npm run test:unit` takes seconds.
 * - integration: everything else (services/<name>/test, test/**).
 *   Its global setup starts one real local mesh (FerretDB, Redis, services,
 *   Envoy) on random loopback ports.
 *
 * globalSetup/globalTeardown sit in the integration project, not at the top
 * level: jest runs a project's global setup only when at least one of that
 * project's tests is selected, so `jest --selectProjects unit` never starts
 * the mesh while a plain `jest` does.
 */
const tsJest = ["ts-jest", { tsconfig: "tsconfig.test.json" }];
/**
 * jose ships ES modules only. Node (>= 20.19) require()s them natively, but
 * jest's module loader does not, so jest alone transpiles them to CommonJS.
 */
const esmOnlyPackages = ["jose"];
const esmToCommonJs = ["ts-jest", { tsconfig: { allowJs: true, isolatedModules: true, module: "commonjs", target: "es2022" } }];

const shared = {
  testEnvironment: "node",
  transform: { "^.+\\.ts$": tsJest, [`/node_modules/(${esmOnlyPackages.join("|")})/.+\\.js$`]: esmToCommonJs },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnlyPackages.join("|")})/)`],
  moduleNameMapper: {
    "^@leadmesh/contracts/descriptor$": "<rootDir>/services/contracts/descriptor/leadmesh.binpb",
    "^@leadmesh/contracts/(.*)$": "<rootDir>/services/contracts/src/gen/$1",
    "^@leadmesh/platform$": "<rootDir>/services/platform/src/index.ts",
  },
  modulePathIgnorePatterns: ["<rootDir>/services/.*/dist/", "<rootDir>/.tools/", "<rootDir>/.run/"],
};

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 60000,
  maxWorkers: 2,
  projects: [
    {
      ...shared,
      displayName: "unit",
      roots: ["<rootDir>/services", "<rootDir>/scripts"],
      testMatch: ["<rootDir>/services/*/src/**/*.test.ts", "<rootDir>/scripts/**/*.test.ts"],
    },
    {
      ...shared,
      displayName: "integration",
      roots: ["<rootDir>/services", "<rootDir>/test"],
      testMatch: ["<rootDir>/services/*/test/**/*.test.ts", "<rootDir>/test/**/*.test.ts"],
      globalSetup: "<rootDir>/test/harness/global-setup.ts",
      globalTeardown: "<rootDir>/test/harness/global-teardown.ts",
    },
  ],
};
