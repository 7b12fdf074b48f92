// Validates Kubernetes manifests (a multi-document YAML file) against the
// Kubernetes API schemas, with the ajv validators that the kubernetes-models
// packages generate from the Kubernetes OpenAPI definitions (and those of
// cert-manager for its kinds). Unknown kinds are an error, not a skip.
//
// usage: node validate.mjs NODE_MODULES_DIR FILE.yaml...
// Prints one line per object and "N passed, N failed"; exit 1 on any failure.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
  console.error("usage: node validate.mjs NODE_MODULES_DIR FILE.yaml...");
  process.exit(2);
}
const yaml = (await import(pathToFileURL(path.join(modules, "js-yaml", "dist", "js-yaml.mjs")))).default;

function modelFile(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group.endsWith("cert-manager.io"))
    return path.join(modules, "@kubernetes-models", "cert-manager", group, version, `${kind}.js`);
  return path.join(modules, "kubernetes-models", group === "" ? "" : group, version, `${kind}.js`);
}

let passed = 0, failed = 0;
for (const file of files) {
  const docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d !== null && d !== undefined);
  for (const doc of docs) {
    const id = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
    try {
      if (typeof doc.apiVersion !== "string" || typeof doc.kind !== "string")
        throw new Error("apiVersion and kind are required");
      const f = modelFile(doc.apiVersion, doc.kind);
      if (!fs.existsSync(f)) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
      const mod = await import(pathToFileURL(f));
      const Model = mod[doc.kind];
      new Model(doc).validate();
      passed++;
      console.log(`ok ${id}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${file}: ${id}: ${e.message}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
