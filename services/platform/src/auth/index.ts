export * from "./access-rules";
export * from "./jwks-cache";
export * from "./jwt";
export * from "./revocation";
