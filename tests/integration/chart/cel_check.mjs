// Evaluates the chart's ValidatingAdmissionPolicy on pods, as the API server
// would: variables in order, then every validation; a pod is denied when one
// is false. CEL by @marcbachmann/cel-js. JSON integers become CEL ints.
//
// usage: node cel_check.mjs NODE_MODULES_DIR POLICY.json CASES.json
//   CASES: [{"name": ..., "object": {...pod...}, "expect": "allow"|"deny",
//            "message": substring of the denying validation's message}]
// Prints one line per case and "N passed, N failed"; exit 1 on any failure.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, policyFile, casesFile] = process.argv.slice(2);
const { evaluate } = await import(pathToFileURL(path.join(modules, "@marcbachmann", "cel-js", "lib", "index.js")));
const policy = JSON.parse(fs.readFileSync(policyFile, "utf8"));
const cases = JSON.parse(fs.readFileSync(casesFile, "utf8"));

function ints(v) {
  if (Array.isArray(v)) return v.map(ints);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ints(x)]));
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return v;
}

function judge(object) {
  const variables = {};
  for (const v of policy.spec.variables || []) variables[v.name] = evaluate(v.expression, { object, variables });
  for (const rule of policy.spec.validations) {
    if (evaluate(rule.expression, { object, variables }) !== true) return rule.message;
  }
  return null;
}

let passed = 0, failed = 0;
for (const c of cases) {
  let verdict, error = null;
  try {
    verdict = judge(ints(c.object));
  } catch (e) {
    error = e.message;
  }
  const ok = error === null && (c.expect === "allow" ? verdict === null
    : verdict !== null && verdict.includes(c.message || ""));
  if (ok) passed++; else failed++;
  console.log(`${ok ? "ok" : "FAIL"} ${c.name}: ${error ? "error " + error : verdict === null ? "allowed" : "denied: " + verdict}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
