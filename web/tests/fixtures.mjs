// Reference data computed in Python (tests/web/web_js_fixtures.py): SAM's postprocess and
// coordinate scaling from maskloop.exporter.decoder_runtime, RLE from pycocotools.
// MASKLOOP_JS_FIXTURES names a folder holding them; otherwise they are made once in a temp
// folder with the repository's Python (MASKLOOP_PYTHON, else .venv/bin/python, else python3).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseNpy } from "../js/npy.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function fixtureDir() {
  const given = process.env.MASKLOOP_JS_FIXTURES;
  if (given && existsSync(join(given, "index.json"))) return given;
  const out = given || mkdtempSync(join(tmpdir(), "maskloop-js-fixtures-"));
  const venv = join(root, ".venv", "bin", "python");
  const python = process.env.MASKLOOP_PYTHON || (existsSync(venv) ? venv : "python3");
  execFileSync(python, [join(root, "tests", "web", "web_js_fixtures.py"), out], {
    stdio: "inherit",
  });
  process.env.MASKLOOP_JS_FIXTURES = out;
  return out;
}

let cached = null;

/** {dir, index, npy(name)}: the fixture folder, its index.json and a .npy loader. */
export function fixtures() {
  if (!cached) {
    const dir = fixtureDir();
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
    const npy = (name) => {
      const buf = readFileSync(join(dir, name));
      return parseNpy(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    };
    cached = { dir, index, npy };
  }
  return cached;
}
