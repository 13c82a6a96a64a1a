export { type EntryKind, STORE_IF_NEWER_LUA } from "./cache-entry";
export * from "./read-cache";
