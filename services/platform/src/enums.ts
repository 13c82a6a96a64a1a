/** Helpers for ts-proto enums (numeric TypeScript enums with reverse mapping). */
export type ProtoEnum = Record<string, string | number>;

/** True for a declared value other than the zero `_UNSPECIFIED` one (ts-proto decodes unknown numbers as-is). */
export function isSpecifiedEnumValue(enumObject: ProtoEnum, value: number): boolean {
  return value !== 0 && typeof enumObject[value] === "string" && enumObject[value] !== "UNRECOGNIZED";
}

/** The names a client may send, for error messages: "A_ONE, A_TWO". */
export function specifiedEnumNames(enumObject: ProtoEnum): string {
  return Object.keys(enumObject)
    .filter((key) => Number.isNaN(Number(key)) && !key.endsWith("_UNSPECIFIED") && key !== "UNRECOGNIZED")
    .join(", ");
}
