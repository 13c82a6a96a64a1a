import { Department } from "@leadmesh/contracts/users/v1/department";
import { violationsOf } from "../../test/fixtures";
import { applyDepartmentUpdate, departmentNameKey, newDepartment } from "./department-rules";

describe("departments", () => {
  it("validates a new department", () => {
    expect(newDepartment(Department.fromPartial({ displayName: " Inbound ", headUserId: "u1" }))).toEqual({ displayName: "Inbound", headUserId: "u1" });
    expect(violationsOf(() => newDepartment(Department.fromPartial({ displayName: "", headUserId: "not valid" })))).toEqual({
      "department.display_name": "is required",
      "department.head_user_id": "must be an id of 1-64 characters [A-Za-z0-9_-]",
    });
    expect(violationsOf(() => newDepartment(undefined))).toEqual({ department: "is required" });
  });

  it("compares names without case or surrounding blanks", () => {
    expect(departmentNameKey(" Inbound Sales ")).toBe(departmentNameKey("inbound sales"));
  });

  it("applies an update mask", () => {
    const current = { displayName: "Inbound", headUserId: "u1" };
    expect(applyDepartmentUpdate(current, Department.fromPartial({ displayName: "Outbound" }), undefined)).toEqual({
      next: { displayName: "Outbound", headUserId: "u1" },
      changed: ["displayName"],
    });
    expect(applyDepartmentUpdate(current, Department.fromPartial({}), ["head_user_id"])).toEqual({
      next: { displayName: "Inbound", headUserId: "" },
      changed: ["headUserId"],
    });
    expect(violationsOf(() => applyDepartmentUpdate(current, Department.fromPartial({}), ["tenant_id"])).update_mask).toMatch(/output only/);
    expect(violationsOf(() => applyDepartmentUpdate(current, Department.fromPartial({}), ["display_name"]))).toEqual({
      "department.display_name": "is required",
    });
  });
});
