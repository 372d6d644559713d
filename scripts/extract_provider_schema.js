#!/usr/bin/env node
// Extracts resource, attribute and block NAMES of the google provider from the generated
// JavaScript of @cdktf/provider-google (16.12.1 = provider 6.50.0). No provider can be
// downloaded where casesync's tests run, but this npm package can, and its generated
// `synthesizeHclAttributes` / `*ToHclTerraform` functions list every snake_case attribute
// and nested block. It knows no types or "required" flags: the Terraform test checks names.
//
// Usage: node extract_provider_schema.js <package/lib> [--resource TYPE]... [--data TYPE]...
// Prints JSON on stdout. Data sources are kept apart from resources because the two share
// type names (`data "google_project"` vs `resource "google_project"`) but not attributes.
"use strict";
const fs = require("fs");
const path = require("path");

const [lib, ...args] = process.argv.slice(2);
if (!lib) {
  console.error("usage: extract_provider_schema.js <package/lib> [--resource T]... [--data T]...");
  process.exit(2);
}
const want = { resource: new Set(), data: new Set() };
for (let i = 0; i < args.length; i += 2) {
  const kind = args[i].replace(/^--/, "");
  if (!(kind in want) || !args[i + 1]) {
    console.error(`bad argument ${args[i]}`);
    process.exit(2);
  }
  want[kind].add(args[i + 1]);
}

const ENTRY = /(\w+): \{\s*value: ([^\n]*),\s*isBlock: (true|false),\s*type: "(\w+)",\s*storageClassType: "(\w+)",?\s*\}/g;

function parseAttrs(text, fns, seen) {
  const out = { attributes: {}, blocks: {} };
  for (const m of text.matchAll(ENTRY)) {
    const [, name, value, isBlock, type, storage] = m;
    if (isBlock === "true") {
      const f = (value.match(/(\w+ToHclTerraform)/) || [])[1];
      // `seen` guards against a (theoretical) self-referencing block type.
      const nested = f && fns[f] && !seen.has(f) ? parseAttrs(fns[f], fns, new Set([...seen, f])) : {};
      out.blocks[name] = { type, ...nested };
    } else {
      out.attributes[name] = storage;
    }
  }
  return out;
}

// Sorted keys give a stable file, so a regenerated schema diffs only where it changed.
function sorted(value) {
  if (Array.isArray(value) || value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
}

const schema = { resources: {}, data_sources: {} };
// Provenance for whoever reads the file: which generated package, which provider release.
const pkg = JSON.parse(fs.readFileSync(path.join(lib, "..", "package.json"), "utf8"));
const provider = (pkg.cdktf && pkg.cdktf.provider) || {};
schema.source = {
  package: `${pkg.name}@${pkg.version}`,
  provider: `${provider.name || "registry.terraform.io/hashicorp/google"} ${provider.version || "?"}`,
  note: "names only: attributes and blocks per type; `readable` adds computed attributes a reference may read",
};
for (const dir of fs.readdirSync(lib).sort()) {
  const file = path.join(lib, dir, "index.js");
  if (!fs.existsSync(file)) continue;
  const src = fs.readFileSync(file, "utf8");
  const type = (src.match(/\.tfResourceType = "(\w+)"/) || [])[1];
  if (!type) continue;
  const kind = dir.startsWith("data-") ? "data" : "resource";
  if (!want[kind].has(type)) continue;
  const fns = {};
  for (const m of src.matchAll(/\nfunction (\w+ToHclTerraform)\(struct\) \{([\s\S]*?)\n\}\n/g)) fns[m[1]] = m[2];
  const cls = (src.match(/synthesizeHclAttributes\(\) \{([\s\S]*?)\n    \}\n/) || [])[1] || "";
  const entry = parseAttrs(cls, fns, new Set());
  // What a reference (`google_x.name.attr`) may read: the arguments plus the computed-only
  // attributes, which appear only as getters of the resource's own class.
  const main = (src.match(/\nclass \w+ extends cdktf\.Terraform(?:Resource|DataSource) \{([\s\S]*?)\n\}\n/) || [])[1] || "";
  const readable = new Set([...Object.keys(entry.attributes), ...Object.keys(entry.blocks)]);
  for (const m of main.matchAll(/this\.get\w*Attribute\('(\w+)'\)/g)) readable.add(m[1]);
  for (const m of main.matchAll(/new [\w.]+\(this, "(\w+)"/g)) readable.add(m[1]);
  entry.readable = [...readable].sort();
  (kind === "data" ? schema.data_sources : schema.resources)[type] = entry;
}

const missing = [];
for (const t of want.resource) if (!schema.resources[t]) missing.push(`resource ${t}`);
for (const t of want.data) if (!schema.data_sources[t]) missing.push(`data ${t}`);
if (missing.length) {
  console.error(`not in the provider package: ${missing.join(", ")}`);
  process.exit(1);
}
console.log(JSON.stringify(sorted(schema), null, 1));
